// The Berth web UI: a single page with hash routes (#/ repositories, #/r/<name> a repository's
// tags, #/m/<name>/<reference> a manifest, #/login), talking to the registry's API only.

import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { CatalogPage, forgetCatalog } from "./catalog.js";
import { RegistryClient } from "./client.js";
import { href, parseRoute, type Route } from "./format.js";
import { ManifestPage } from "./manifest.js";
import { RepositoryPage } from "./repository.js";
import "./style.css";

function settings(): { api: string } {
  const element = document.getElementById("berth-settings");
  try {
    const parsed = JSON.parse(element?.textContent ?? "{}") as { api?: string };
    return { api: parsed.api ?? "" };
  } catch {
    return { api: "" };
  }
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

function LoginPage(props: { client: RegistryClient; back: string }) {
  const { client, back } = props;
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const user = useRef<HTMLInputElement>(null);
  useEffect(() => user.current?.focus(), []);
  const submit = async (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    const field = (name: string): string => {
      const value = form.get(name);
      return typeof value === "string" ? value : "";
    };
    setBusy(true);
    setError(undefined);
    try {
      await client.login(field("username"), field("password"));
      forgetCatalog();
      location.hash = back.startsWith("#") && !back.startsWith("#/login") ? back : "#/";
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="login-title" class="login">
      <h1 id="login-title">Log in</h1>
      <p class="muted">The same user name and password as for docker login or podman login.</p>
      <form onSubmit={(event) => void submit(event)}>
        <label for="username">User name</label>
        <input id="username" name="username" autoComplete="username" required ref={user} />
        <label for="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete="current-password"
          required
        />
        {error !== undefined ? (
          <p role="alert" class="error" id="login-error">
            {error}
          </p>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
      </form>
    </section>
  );
}

function App(props: { client: RegistryClient }) {
  const { client } = props;
  const route = useRoute();
  const [, setVersion] = useState(0);
  const main = useRef<HTMLElement>(null);
  useEffect(() => client.subscribe(() => setVersion((n) => n + 1)), [client]);
  useEffect(() => {
    void client.probe().then(
      () => setVersion((n) => n + 1),
      () => undefined,
    );
  }, [client]);
  useEffect(() => {
    // A new page: move the focus to its heading, as a screen reader user expects.
    const heading = main.current?.querySelector("h1");
    if (heading instanceof HTMLElement && route.page !== "login") heading.focus();
  }, [route]);
  const page =
    route.page === "catalog" ? (
      <CatalogPage client={client} query={route.query} pageNumber={route.pageNumber} />
    ) : route.page === "repository" ? (
      <RepositoryPage client={client} name={route.name} />
    ) : route.page === "manifest" ? (
      <ManifestPage client={client} name={route.name} reference={route.reference} />
    ) : route.page === "login" ? (
      <LoginPage client={client} back={route.back} />
    ) : (
      <p role="alert">
        No such page. <a href={href.catalog()}>Repositories</a>
      </p>
    );
  const here = location.hash || "#/";
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(event) => {
          event.preventDefault();
          main.current?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href.catalog()}>
          Berth
        </a>
        <nav aria-label="Account">
          {client.user !== undefined ? (
            <>
              <span id="signed-in">Logged in as {client.user}</span>{" "}
              <button
                type="button"
                onClick={() => {
                  client.logout();
                  forgetCatalog();
                  location.hash = "#/";
                }}
              >
                Log out
              </button>
            </>
          ) : client.hasAuth && route.page !== "login" ? (
            <a href={href.login(here)}>Log in</a>
          ) : null}
        </nav>
      </header>
      <main id="main" tabIndex={-1} ref={main}>
        {page}
      </main>
    </>
  );
}

const client = new RegistryClient(settings().api);
render(<App client={client} />, document.getElementById("app")!);
