// A repository's tags, a page at a time from Berth's `/v2/_berth/tags/<name>` (digest, push time,
// size and platforms of each tag in one request per page), with deleting a tag where the registry
// allows deletes and the user may.

import { useEffect, useRef, useState } from "preact/hooks";
import { nextLink, type RegistryClient } from "./client.js";
import { forgetCatalog } from "./catalog.js";
import { deleteMessage } from "./deleting.js";
import type { RepositoryUsagePage, TagDetailsPage } from "../../api/berth-types.js";
import { formatBytes, formatPlatform, formatTime, href } from "./format.js";
import { CopyLine, Digest, ErrorNote, Loading, Pager } from "./parts.js";

/** Tags per page. */
const PAGE_SIZE = 20;

/** What a manifest is, in a word. */
export function kindOf(mediaType: string, artifactType?: string): string {
  if (artifactType !== undefined) return "artifact";
  if (mediaType.includes("index") || mediaType.includes("manifest.list")) return "index";
  return "image";
}

export function RepositoryPage(props: { client: RegistryClient; name: string }) {
  const { client, name } = props;
  // The `last` of each page shown so far: the first page has none.
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<{ data?: TagDetailsPage; next?: string; error?: unknown }>({});
  const [confirming, setConfirming] = useState<string | undefined>();
  const [status, setStatus] = useState<{ text: string; error?: boolean } | undefined>();
  const [reload, setReload] = useState(0);
  const [usage, setUsage] = useState<RepositoryUsagePage | undefined>();
  const heading = useRef<HTMLHeadingElement>(null);
  const cursor = cursors[cursors.length - 1];

  useEffect(() => {
    let stopped = false;
    setUsage(undefined);
    // Secondary: without it the page is whole, so a failure only leaves it out.
    client.json<RepositoryUsagePage>(`/v2/_berth/usage/${name}`).then(
      ({ body }) => !stopped && setUsage(body),
      () => undefined,
    );
    return () => {
      stopped = true;
    };
  }, [client, name, reload]);

  useEffect(() => {
    setCursors([undefined]);
    setStatus(undefined);
  }, [name]);

  useEffect(() => {
    let stopped = false;
    setPage({});
    const last = cursor === undefined ? "" : `&last=${encodeURIComponent(cursor)}`;
    client.json<TagDetailsPage>(`/v2/_berth/tags/${name}?n=${PAGE_SIZE}${last}`).then(
      ({ body, headers }) => {
        if (!stopped) setPage({ data: body, next: nextLink(headers.get("Link")) });
      },
      (error: unknown) => {
        if (!stopped) setPage({ error });
      },
    );
    return () => {
      stopped = true;
    };
  }, [client, name, cursor, reload]);

  const remove = async (tag: string) => {
    setConfirming(undefined);
    try {
      await client.request(`/v2/${name}/manifests/${tag}`, { method: "DELETE" });
      setStatus({ text: `Deleted tag ${tag}.` });
      forgetCatalog();
      setReload((n) => n + 1);
    } catch (error) {
      setStatus({ text: deleteMessage(error, `tag ${tag}`, name), error: true });
    }
    heading.current?.focus();
  };

  const data = page.data;
  const canDelete = data?.mayDelete === true;
  const first = data?.tags[0]?.name;
  return (
    <section aria-labelledby="repository-title">
      <p class="crumbs">
        <a href={href.catalog()}>Repositories</a> /
      </p>
      <h1 id="repository-title" tabIndex={-1} ref={heading}>
        {name}
      </h1>
      {usage !== undefined ? (
        <p class="muted" id="usage">
          Storage: {formatBytes(usage.bytes)} in {usage.blobs}{" "}
          {usage.blobs === 1 ? "blob" : "blobs"} (blobs shared with other repositories count in
          each)
        </p>
      ) : null}
      {status !== undefined ? (
        <p role={status.error ? "alert" : "status"} class={status.error ? "error" : "notice"}>
          {status.text}
        </p>
      ) : null}
      {first !== undefined ? (
        <CopyLine
          label={`docker pull ${location.host}/${name}:${first}`}
          value={`docker pull ${location.host}/${name}:${first}`}
        />
      ) : null}
      {page.error !== undefined ? (
        <ErrorNote error={page.error} back={href.repository(name)} />
      ) : null}
      {data === undefined && page.error === undefined ? <Loading what="tags" /> : null}
      {data !== undefined && data.tags.length === 0 ? <p>This repository has no tags.</p> : null}
      {data !== undefined && data.tags.length > 0 ? (
        <table class="tags">
          <caption>
            Tags
            {data.deleteEnabled ? "" : " (deleting is disabled on this registry)"}
            {data.deleteEnabled && !canDelete ? " (you may not delete here)" : ""}
          </caption>
          <thead>
            <tr>
              <th scope="col">Tag</th>
              <th scope="col">Digest</th>
              <th scope="col">Kind</th>
              <th scope="col">Platforms</th>
              <th scope="col">Size</th>
              <th scope="col">Pushed</th>
              {canDelete ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {data.tags.map((tag) => (
              <tr key={tag.name}>
                <th scope="row">
                  <a href={href.manifest(name, tag.name)}>{tag.name}</a>
                </th>
                <td>
                  <Digest value={tag.digest} />
                </td>
                <td>{kindOf(tag.mediaType, tag.artifactType)}</td>
                <td>{tag.platforms.map(formatPlatform).join(", ") || "—"}</td>
                <td class="number">{formatBytes(tag.size)}</td>
                <td>
                  <time dateTime={tag.pushedAt}>{formatTime(tag.pushedAt)}</time>
                </td>
                {canDelete ? (
                  <td>
                    {confirming === tag.name ? (
                      <span
                        class="confirm"
                        role="group"
                        aria-label={`Confirm deleting tag ${tag.name}`}
                      >
                        <button type="button" class="danger" onClick={() => void remove(tag.name)}>
                          Delete {tag.name}
                        </button>
                        <button type="button" onClick={() => setConfirming(undefined)}>
                          Cancel
                        </button>
                      </span>
                    ) : (
                      <button
                        type="button"
                        aria-label={`Delete tag ${tag.name}`}
                        onClick={() => setConfirming(tag.name)}
                      >
                        Delete
                      </button>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      <Pager
        label="Tag pages"
        position={`Page ${cursors.length}`}
        hasPrevious={cursors.length > 1}
        hasNext={page.next !== undefined}
        onPrevious={() => setCursors(cursors.slice(0, -1))}
        onNext={() => {
          const last = data?.tags[data.tags.length - 1]?.name;
          if (last !== undefined) setCursors([...cursors, last]);
        }}
      />
    </section>
  );
}
