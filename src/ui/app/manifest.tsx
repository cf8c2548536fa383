// One manifest: what it is (media type, digest, sizes, subject), the lines to pull it, the
// platforms of an index, the config and layers of an image, its annotations, the referrers tree
// (manifest-sections.tsx), and deleting it.

import { useEffect, useRef, useState } from "preact/hooks";
import type { RegistryClient } from "./client.js";
import { forgetCatalog } from "./catalog.js";
import { deleteMessage } from "./deleting.js";
import { formatBytes, formatPlatform, href } from "./format.js";
import {
  Annotations,
  ConfigSection,
  Referrers,
  type ManifestDocument,
} from "./manifest-sections.js";
import { CopyLine, Digest, ErrorNote, Loading } from "./parts.js";
import { kindOf } from "./repository.js";

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

interface Loaded {
  digest: string;
  mediaType: string;
  size: number;
  document: ManifestDocument;
  deleteEnabled: boolean;
  mayDelete: boolean;
}

async function loadManifest(
  client: RegistryClient,
  name: string,
  reference: string,
): Promise<Loaded> {
  const [response, permissions] = await Promise.all([
    client.request(`/v2/${name}/manifests/${reference}`, { headers: { Accept: ACCEPT } }),
    client.json<{ deleteEnabled: boolean; mayDelete: boolean }>(`/v2/_berth/tags/${name}?n=0`),
  ]);
  const text = await response.text();
  const document = JSON.parse(text) as ManifestDocument;
  return {
    digest: response.headers.get("Docker-Content-Digest") ?? reference,
    mediaType: (response.headers.get("Content-Type") ?? document.mediaType ?? "").split(";")[0]!,
    size: new TextEncoder().encode(text).length,
    document,
    deleteEnabled: permissions.body.deleteEnabled,
    mayDelete: permissions.body.mayDelete,
  };
}

export function ManifestPage(props: { client: RegistryClient; name: string; reference: string }) {
  const { client, name, reference } = props;
  const [state, setState] = useState<{ loaded?: Loaded; error?: unknown }>({});
  const [confirming, setConfirming] = useState(false);
  const [outcome, setOutcome] = useState<{ text: string; error: boolean } | undefined>();
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    let stopped = false;
    setState({});
    setOutcome(undefined);
    loadManifest(client, name, reference).then(
      (loaded) => !stopped && setState({ loaded }),
      (error: unknown) => !stopped && setState({ error }),
    );
    return () => {
      stopped = true;
    };
  }, [client, name, reference]);

  const isDigest = reference.includes(":");
  const title = isDigest ? `${name}@${reference}` : `${name}:${reference}`;
  const remove = async (digest: string) => {
    setConfirming(false);
    try {
      await client.request(`/v2/${name}/manifests/${digest}`, { method: "DELETE" });
      forgetCatalog();
      setOutcome({
        text: `Deleted manifest ${digest} and every tag pointing at it.`,
        error: false,
      });
    } catch (error) {
      setOutcome({ text: deleteMessage(error, `manifest ${digest}`, name), error: true });
    }
    heading.current?.focus();
  };

  const loaded = state.loaded;
  const document = loaded?.document;
  const layers = document?.layers ?? [];
  const total =
    document?.config !== undefined
      ? (loaded?.size ?? 0) +
        document.config.size +
        layers.reduce((sum, layer) => sum + layer.size, 0)
      : undefined;
  const deleted = outcome !== undefined && !outcome.error;
  return (
    <section aria-labelledby="manifest-title">
      <p class="crumbs">
        <a href={href.catalog()}>Repositories</a> / <a href={href.repository(name)}>{name}</a> /
      </p>
      <h1 id="manifest-title" tabIndex={-1} ref={heading} class="wrap">
        {title}
      </h1>
      {outcome !== undefined ? (
        <p role={outcome.error ? "alert" : "status"} class={outcome.error ? "error" : "notice"}>
          {outcome.text} {deleted ? <a href={href.repository(name)}>Back to {name}</a> : null}
        </p>
      ) : null}
      {state.error !== undefined ? <ErrorNote error={state.error} back={location.hash} /> : null}
      {loaded === undefined && state.error === undefined ? <Loading what="the manifest" /> : null}
      {loaded !== undefined && document !== undefined && !deleted ? (
        <>
          <dl class="facts">
            <dt>Kind</dt>
            <dd>{kindOf(loaded.mediaType, document.artifactType)}</dd>
            <dt>Media type</dt>
            <dd>{loaded.mediaType}</dd>
            {document.artifactType !== undefined ? (
              <>
                <dt>Artifact type</dt>
                <dd>{document.artifactType}</dd>
              </>
            ) : null}
            <dt>Digest</dt>
            <dd>
              <code>{loaded.digest}</code>
            </dd>
            <dt>Manifest size</dt>
            <dd>{formatBytes(loaded.size)}</dd>
            {total !== undefined ? (
              <>
                <dt>Total size</dt>
                <dd>{formatBytes(total)}</dd>
              </>
            ) : null}
            {document.subject !== undefined ? (
              <>
                <dt>Subject</dt>
                <dd>
                  <a href={href.manifest(name, document.subject.digest)}>
                    <Digest value={document.subject.digest} />
                  </a>
                </dd>
              </>
            ) : null}
          </dl>
          <section aria-labelledby="pull-title">
            <h2 id="pull-title">Pull</h2>
            {isDigest ? null : (
              <CopyLine
                label="docker pull command"
                value={`docker pull ${location.host}/${name}:${reference}`}
              />
            )}
            <CopyLine
              label="podman pull command"
              value={`podman pull ${location.host}/${name}@${loaded.digest}`}
            />
          </section>
          {document.manifests !== undefined ? (
            <table class="platforms">
              <caption>Platforms</caption>
              <thead>
                <tr>
                  <th scope="col">Platform</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Media type</th>
                  <th scope="col">Manifest size</th>
                </tr>
              </thead>
              <tbody>
                {document.manifests.map((child) => (
                  <tr key={child.digest}>
                    <th scope="row">
                      <a href={href.manifest(name, child.digest)}>
                        {child.platform !== undefined
                          ? formatPlatform(child.platform)
                          : "(no platform)"}
                      </a>
                    </th>
                    <td>
                      <Digest value={child.digest} />
                    </td>
                    <td>{child.mediaType}</td>
                    <td class="number">{formatBytes(child.size)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          {document.config !== undefined ? (
            <ConfigSection client={client} name={name} config={document.config} />
          ) : null}
          {document.layers !== undefined ? (
            <table class="layers">
              <caption>Layers ({layers.length})</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">Digest</th>
                  <th scope="col">Media type</th>
                  <th scope="col">Size</th>
                </tr>
              </thead>
              <tbody>
                {layers.map((layer, i) => (
                  <tr key={`${i}-${layer.digest}`}>
                    <td class="number">{i + 1}</td>
                    <td>
                      <Digest value={layer.digest} />
                    </td>
                    <td>{layer.mediaType}</td>
                    <td class="number">{formatBytes(layer.size)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          ) : null}
          <Annotations title="Annotations" values={document.annotations} />
          <section aria-labelledby="referrers-title">
            <h2 id="referrers-title">Referrers</h2>
            <Referrers client={client} name={name} digest={loaded.digest} depth={1} />
          </section>
          {loaded.mayDelete ? (
            <section aria-labelledby="delete-title">
              <h2 id="delete-title">Delete</h2>
              {confirming ? (
                <p class="confirm" role="group" aria-label="Confirm deleting the manifest">
                  Delete this manifest and every tag pointing at it?{" "}
                  <button type="button" class="danger" onClick={() => void remove(loaded.digest)}>
                    Delete manifest
                  </button>{" "}
                  <button type="button" onClick={() => setConfirming(false)}>
                    Cancel
                  </button>
                </p>
              ) : (
                <button type="button" onClick={() => setConfirming(true)}>
                  Delete manifest…
                </button>
              )}
            </section>
          ) : (
            <p class="muted">
              {loaded.deleteEnabled
                ? "You may not delete in this repository."
                : "Deleting is disabled on this registry."}
            </p>
          )}
        </>
      ) : null}
    </section>
  );
}
