// Serving the web UI: index.html revalidated and hashed assets cached for a year, gzip, the UI at
// `/` never shadowing the API, the UI below another path and below http.prefix, and the config.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { loadConfig, resolveConfig } from "../config/index.js";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { configError } from "../testing/config.js";

/** The hashed asset names index.html refers to. */
function assetsOf(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((match) => match[1]!);
}

describe("web UI serving", () => {
  let registry: RunningRegistry;
  before(async () => {
    registry = await startRegistry({
      driver: "inmemory",
      ui: { enabled: true, path: "/" },
      logLevel: "silent",
    });
  });
  after(() => registry.close());

  it("serves index.html at / with no-cache, an ETag and the API's prefix", async () => {
    const response = await fetch(`${registry.url}/`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
    assert.equal(response.headers.get("cache-control"), "no-cache");
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    assert.match(
      response.headers.get("content-security-policy") ?? "",
      /script-src|default-src 'self'/,
    );
    const html = await response.text();
    assert.match(
      html,
      /<script type="application\/json" id="berth-settings">\{"api":""\}<\/script>/,
    );
    const etag = response.headers.get("etag")!;
    const again = await fetch(`${registry.url}/`, { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304);
  });

  it("serves hashed assets immutable for a year, gzipped when asked", async () => {
    const html = await (await fetch(`${registry.url}/`)).text();
    const assets = assetsOf(html);
    assert.deepEqual(
      assets.map((path) => path.replace(/-[A-Z0-9]{8}\./, "-HASH.")),
      ["assets/app-HASH.css", "assets/app-HASH.js"],
    );
    for (const path of assets) {
      const plain = await fetch(`${registry.url}/${path}`, {
        headers: { "Accept-Encoding": "identity" },
      });
      assert.equal(plain.status, 200);
      assert.equal(plain.headers.get("cache-control"), "public, max-age=31536000, immutable");
      const body = Buffer.from(await plain.arrayBuffer());
      // Nothing is fetched from elsewhere at run time.
      assert.doesNotMatch(body.toString(), /https?:\/\/(cdn|unpkg|esm\.sh|jsdelivr)/);
      // fetch asks for gzip and decompresses; the header says what came over the wire.
      const gzipped = await fetch(`${registry.url}/${path}`);
      assert.equal(gzipped.headers.get("content-encoding"), "gzip");
      assert.equal(gzipped.headers.get("vary"), "Accept-Encoding");
      assert.deepEqual(Buffer.from(await gzipped.arrayBuffer()), body);
    }
    const missing = await fetch(`${registry.url}/assets/app-NOTTHERE.js`);
    assert.equal(missing.status, 404);
  });

  it("leaves /v2/, unknown paths and other methods to the API", async () => {
    const base = await fetch(`${registry.url}/v2/`);
    assert.equal(base.status, 200);
    assert.equal(await base.text(), "{}");
    const catalog = await fetch(`${registry.url}/v2/_catalog`);
    assert.deepEqual(await catalog.json(), { repositories: [] });
    const unknown = await fetch(`${registry.url}/favicon.ico`);
    assert.equal(unknown.status, 404);
    assert.match(unknown.headers.get("content-type") ?? "", /json/);
    const post = await fetch(`${registry.url}/`, { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
  });

  it("serves below ui.path and http.prefix, redirecting the bare path", async () => {
    const prefixed = await startRegistry({
      config: {
        version: "0.1",
        storage: { inmemory: {} },
        http: { addr: "127.0.0.1:0", prefix: "/registry/" },
        ui: { enabled: true, path: "/ui/" },
      },
      logLevel: "silent",
    });
    try {
      const origin = prefixed.url.replace(/\/registry$/, "");
      const bare = await fetch(`${origin}/registry/ui`, { redirect: "manual" });
      assert.equal(bare.status, 301);
      assert.equal(bare.headers.get("location"), "/registry/ui/");
      const page = await fetch(`${origin}/registry/ui/`);
      const html = await page.text();
      assert.match(html, /\{"api":"\/registry"\}/);
      const [script] = assetsOf(html).filter((path) => path.endsWith(".js"));
      assert.equal((await fetch(`${origin}/registry/ui/${script}`)).status, 200);
      assert.equal((await fetch(`${origin}/registry/v2/`)).status, 200);
      // Not at the root, not outside the prefix.
      assert.equal((await fetch(`${origin}/registry/`)).status, 404);
      assert.equal((await fetch(`${origin}/ui/`)).status, 404);
    } finally {
      await prefixed.close();
    }
  });
});

describe("ui config", () => {
  it("is on for `berth serve` without a config file, off by default in a config file", async () => {
    const defaults = await loadConfig(undefined, {});
    assert.deepEqual(defaults.ui, { enabled: true, path: "/" });
    const off = await loadConfig(undefined, { REGISTRY_UI_ENABLED: "false" });
    assert.equal(off.ui.enabled, false);
    const file = resolveConfig({ version: "0.1", storage: { inmemory: {} } });
    assert.deepEqual(file.ui, { enabled: false, path: "/" });
    assert.deepEqual(file.warnings, []);
    const on = resolveConfig({
      version: "0.1",
      storage: { inmemory: {} },
      ui: { enabled: true, path: "/console/" },
    });
    assert.deepEqual(on.ui, { enabled: true, path: "/console" });
  });

  it("refuses a path that is the API's or no path, and warns about unknown keys", () => {
    for (const path of ["/v2", "/v2/", "/v2/ui", "/debug", "ui", "/a b", "/../x"]) {
      const error = configError(() =>
        resolveConfig({ version: "0.1", storage: { inmemory: {} }, ui: { enabled: true, path } }),
      );
      assert.equal(error.problems[0]!.key, "ui.path", path);
    }
    const bad = configError(() =>
      resolveConfig({ version: "0.1", storage: { inmemory: {} }, ui: { enabled: "maybe" } }),
    );
    assert.equal(bad.problems[0]!.key, "ui.enabled");
    const warned = resolveConfig({
      version: "0.1",
      storage: { inmemory: {} },
      ui: { enable: true },
    });
    assert.deepEqual(warned.warnings, ["ui.enable: unknown key, ignored"]);
  });
});
