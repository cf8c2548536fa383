// The repositories page: `_catalog` read in pages of 1000 (10 requests for 10,000 repositories,
// none per repository), searched and paged in the browser. The first page shows as soon as the
// first answer arrives; the list stays for the session until a login, logout or delete.

import { useEffect, useRef, useState } from "preact/hooks";
import { nextLink, type RegistryClient } from "./client.js";
import { href } from "./format.js";
import { ErrorNote, Loading, Pager } from "./parts.js";

/** Repositories shown per page. */
const PAGE_SIZE = 50;
/** Repositories asked for per catalog request. */
const CATALOG_CHUNK = 1000;

interface CatalogState {
  names: string[];
  complete: boolean;
  error?: unknown;
}

let cached: { key: string; state: CatalogState } | undefined;

/** Forgets the cached catalog (after a delete, a login or a logout). */
export function forgetCatalog(): void {
  cached = undefined;
}

function useCatalog(client: RegistryClient): CatalogState {
  const key = client.user ?? "";
  const [state, setState] = useState<CatalogState>(
    cached?.key === key ? cached.state : { names: [], complete: false },
  );
  useEffect(() => {
    if (cached?.key === key && cached.state.complete) return;
    let stopped = false;
    const names: string[] = [];
    const publish = (next: CatalogState) => {
      cached = { key, state: next };
      if (!stopped) setState(next);
    };
    void (async () => {
      let path: string | undefined = `/v2/_catalog?n=${CATALOG_CHUNK}`;
      try {
        while (path !== undefined && !stopped) {
          const { body, headers }: { body: { repositories?: string[] }; headers: Headers } =
            await client.json<{ repositories?: string[] }>(path);
          names.push(...(body.repositories ?? []));
          path = nextLink(headers.get("Link"));
          publish({ names: [...names], complete: path === undefined });
        }
      } catch (error) {
        if (!stopped) setState({ names: [...names], complete: true, error });
      }
    })();
    return () => {
      stopped = true;
    };
  }, [client, key]);
  return state;
}

export function CatalogPage(props: { client: RegistryClient; query: string; pageNumber: number }) {
  const { client, query, pageNumber } = props;
  const catalog = useCatalog(client);
  const [text, setText] = useState(query);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => setText(query), [query]);

  const needle = text.trim().toLowerCase();
  const matches =
    needle === "" ? catalog.names : catalog.names.filter((name) => name.includes(needle));
  const pages = Math.max(1, Math.ceil(matches.length / PAGE_SIZE));
  const page = Math.min(pageNumber, pages);
  const shown = matches.slice((page - 1) * PAGE_SIZE, page * PAGE_SIZE);
  const go = (next: number) => {
    location.hash = href.catalog(text.trim(), next);
    heading.current?.focus();
  };
  const count =
    needle === ""
      ? `${catalog.names.length.toLocaleString()} ${catalog.names.length === 1 ? "repository" : "repositories"}`
      : `${matches.length.toLocaleString()} of ${catalog.names.length.toLocaleString()} repositories match “${text.trim()}”`;

  return (
    <section aria-labelledby="catalog-title">
      <h1 id="catalog-title" tabIndex={-1} ref={heading}>
        Repositories
      </h1>
      <form
        role="search"
        class="search"
        onSubmit={(event) => {
          event.preventDefault();
          location.hash = href.catalog(text.trim(), 1);
        }}
      >
        <label for="search">Search repositories</label>
        <input
          id="search"
          type="search"
          value={text}
          placeholder="name contains…"
          autoComplete="off"
          onInput={(event) => {
            const value = (event.target as HTMLInputElement).value;
            setText(value);
            history.replaceState(null, "", href.catalog(value.trim(), 1));
          }}
        />
      </form>
      {catalog.error !== undefined ? (
        <ErrorNote error={catalog.error} back={href.catalog()} />
      ) : null}
      <p role="status" class="muted" id="catalog-count">
        {count}
        {catalog.complete ? "" : " so far, loading…"}
      </p>
      {catalog.names.length === 0 && !catalog.complete ? <Loading what="repositories" /> : null}
      {shown.length > 0 ? (
        <ul class="repositories" aria-label="Repositories">
          {shown.map((name) => (
            <li key={name}>
              <a href={href.repository(name)}>{name}</a>
            </li>
          ))}
        </ul>
      ) : catalog.complete && catalog.error === undefined ? (
        <p>
          {needle === ""
            ? "No repositories yet: push an image to see it here."
            : "No repository matches."}
        </p>
      ) : null}
      <Pager
        label="Repository pages"
        position={`Page ${page} of ${pages}`}
        hasPrevious={page > 1}
        hasNext={page < pages}
        onPrevious={() => go(page - 1)}
        onNext={() => go(page + 1)}
      />
    </section>
  );
}
