// The pull-through cache against real upstreams on loopback: Debian's docker-registry
// (distribution 2.8.2) serving images Berth's storage layer wrote, behind a counting proxy that
// can also play Docker Hub's token flow, rate limits and failures; the cache is a Berth started
// from a config with distribution's `proxy.remoteurl` or Berth's `proxy.upstreams`.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createDriver } from "../driver/index.js";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { createRegistryStorage } from "../storage/index.js";
import { startDockerRegistry, type DockerRegistry } from "../testing/docker-registry.js";
import { buildImage, buildIndex, pushImage, pushIndex, type TestImage } from "../testing/images.js";
import { assertLayoutHolds, indexEntry } from "../testing/oci-layout.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { podmanWithMirror } from "../testing/podman.js";
import { skipUnlessCommands } from "../testing/tools.js";
import {
  startUpstreamProxy,
  type Interference,
  type UpstreamProxy,
} from "../testing/upstream-proxy.js";
import { ProxyRegistry } from "./index.js";

const skip = skipUnlessCommands(
  ["docker-registry", "skopeo", "htpasswd"],
  ["docker-registry", "skopeo", "apache2-utils"],
);
const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");
// Small enough for npm test on a loaded machine; bench/proxy-single-fetch.ts does 256 MiB.
const BIG = 8 * 1024 * 1024;

function hash(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Starts a Berth whose config has `proxy` (and filesystem storage at `root`). */
function startCache(root: string, proxy: Record<string, unknown>): Promise<RunningRegistry> {
  return startRegistry({
    config: {
      version: "0.1",
      storage: {
        filesystem: { rootdirectory: root },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: "127.0.0.1:0" },
      log: { accesslog: { disabled: true } },
      proxy,
    },
    logLevel: "silent",
  });
}

function stats(cache: RunningRegistry) {
  assert.ok(cache.storage instanceof ProxyRegistry);
  return cache.storage.stats();
}

describe("pull-through cache", { skip }, () => {
  let dir: string;
  let upstream: DockerRegistry;
  let proxy: UpstreamProxy;
  let interfere: (method: string, path: string) => Interference = () => undefined;
  const app = buildImage({ layers: 2 });
  const multi = buildIndex();
  const big: TestImage = buildImage({ layers: 1, layerSize: BIG });
  const caches: RunningRegistry[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-proxy-"));
    const root = join(dir, "upstream");
    const storage = createRegistryStorage(
      await createDriver("filesystem", { rootdirectory: root }),
    );
    await pushImage(storage.repository("library/app"), app, "v1");
    await pushIndex(storage.repository("multi"), multi, "latest");
    await pushImage(storage.repository("big"), big, "v1");
    upstream = await startDockerRegistry(root, { deleteEnabled: false });
    proxy = await startUpstreamProxy(upstream.url, { interfere: (m, p) => interfere(m, p) });
  });

  after(async () => {
    for (const cache of caches) await cache.close();
    await proxy?.stop();
    await upstream?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function cache(name: string, config: Record<string, unknown>): Promise<RunningRegistry> {
    const running = await startCache(join(dir, name), config);
    caches.push(running);
    return running;
  }

  test("proxy.remoteurl: a pull goes upstream once, then is served from storage", async () => {
    const berth = await cache("single", { remoteurl: proxy.url, ttl: "1h" });
    const manifestPath = "/v2/library/app/manifests/v1";
    for (let round = 0; round < 2; round++) {
      const manifest = await fetch(berth.url + manifestPath, { headers: { Accept: ACCEPT } });
      assert.equal(manifest.status, 200);
      assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), app.manifest.bytes);
      assert.equal(manifest.headers.get("docker-content-digest"), app.manifest.digest);
      for (const blob of [...app.layers, app.config]) {
        const response = await fetch(`${berth.url}/v2/library/app/blobs/${blob.digest}`);
        assert.equal(response.status, 200);
        assert.equal(hash(Buffer.from(await response.arrayBuffer())), blob.digest);
      }
    }
    // One HEAD (tag check), one manifest GET, one GET per blob: the second round never went out.
    assert.equal(proxy.count("HEAD", manifestPath), 1);
    assert.equal(proxy.count("GET", `/v2/library/app/manifests/${app.manifest.digest}`), 1);
    for (const blob of [...app.layers, app.config]) {
      assert.equal(proxy.count("GET", `/v2/library/app/blobs/${blob.digest}`), 1);
    }
    const [counters] = stats(berth);
    assert.equal(counters!.misses, 4);
    assert.ok(counters!.hits >= 4);
    assert.ok(counters!.bytesFromUpstream >= app.layers[0]!.size);

    // What the cache stored is ordinary content: distribution serves it from the cache's root.
    const served = await startDockerRegistry(join(dir, "single"), { deleteEnabled: false });
    try {
      const manifest = await fetch(served.url + manifestPath, { headers: { Accept: ACCEPT } });
      assert.equal(manifest.status, 200);
      assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), app.manifest.bytes);
      const layer = await fetch(`${served.url}/v2/library/app/blobs/${app.layers[0]!.digest}`);
      assert.equal(hash(Buffer.from(await layer.arrayBuffer())), app.layers[0]!.digest);
    } finally {
      await served.stop();
    }
  });

  test("pushes and deletes are refused with UNSUPPORTED (405), as distribution's proxy", async () => {
    const berth = await cache("refuse", { remoteurl: proxy.url });
    const upload = await fetch(`${berth.url}/v2/library/app/blobs/uploads/`, { method: "POST" });
    assert.equal(upload.status, 405);
    assert.equal(
      ((await upload.json()) as { errors: { code: string }[] }).errors[0]!.code,
      "UNSUPPORTED",
    );
    const put = await fetch(`${berth.url}/v2/library/app/manifests/v2`, {
      method: "PUT",
      headers: { "Content-Type": app.manifest.mediaType },
      body: app.manifest.bytes,
    });
    assert.equal(put.status, 405);
    await put.arrayBuffer();
  });

  test("an index: only the platform a client asks for is fetched", async () => {
    const berth = await cache("index", { remoteurl: proxy.url });
    const index = await fetch(`${berth.url}/v2/multi/manifests/latest`, {
      headers: { Accept: ACCEPT },
    });
    assert.equal(index.status, 200);
    assert.deepEqual(Buffer.from(await index.arrayBuffer()), multi.index.bytes);
    const arm = multi.images[1]!;
    const child = await fetch(`${berth.url}/v2/multi/manifests/${arm.manifest.digest}`, {
      headers: { Accept: ACCEPT },
    });
    assert.equal(child.status, 200);
    await child.arrayBuffer();
    assert.equal(proxy.count("GET", `/v2/multi/manifests/${arm.manifest.digest}`), 1);
    const amd = multi.images[0]!;
    assert.equal(proxy.count("GET", `/v2/multi/manifests/${amd.manifest.digest}`), 0);
    assert.equal(proxy.count("GET", `/v2/multi/blobs/${amd.layers[0]!.digest}`), 0);
  });

  test("20 concurrent GETs of an uncached 8 MiB blob: the upstream serves it once", async () => {
    const berth = await cache("concurrent", { remoteurl: proxy.url });
    const layer = big.layers[0]!;
    const path = `/v2/big/blobs/${layer.digest}`;
    const bodies = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const response = await fetch(berth.url + path);
        assert.equal(response.status, 200);
        return hash(Buffer.from(await response.arrayBuffer()));
      }),
    );
    for (const digest of bodies) assert.equal(digest, layer.digest);
    assert.equal(proxy.count("GET", path), 1);
  });

  test("a fetch cut midway commits nothing; the next request fetches again", async () => {
    const berth = await cache("cut", { remoteurl: proxy.url });
    const layer = big.layers[0]!;
    const path = `/v2/big/blobs/${layer.digest}`;
    const before = proxy.count("GET", path);
    interfere = (method, p) => (method === "GET" && p === path ? "cut" : undefined);
    try {
      const response = await fetch(berth.url + path);
      await assert.rejects(response.arrayBuffer());
    } finally {
      interfere = () => undefined;
    }
    const local = berth.storage;
    assert.ok(local instanceof ProxyRegistry);
    // Not stored: a blob GET goes upstream again and now succeeds.
    const again = await fetch(berth.url + path);
    assert.equal(hash(Buffer.from(await again.arrayBuffer())), layer.digest);
    assert.equal(proxy.count("GET", path), before + 2);
  });

  test("upstream down or rate-limiting: cached tags still pull; uncached ones say why", async () => {
    const berth = await cache("stale", { remoteurl: proxy.url, ttl: "0s" });
    const manifestPath = "/v2/library/app/manifests/v1";
    const first = await fetch(berth.url + manifestPath, { headers: { Accept: ACCEPT } });
    assert.equal(first.status, 200);
    await first.arrayBuffer();
    for (const blob of app.layers)
      await (await fetch(`${berth.url}/v2/library/app/blobs/${blob.digest}`)).arrayBuffer();

    interfere = () => "down";
    try {
      const stale = await fetch(berth.url + manifestPath, { headers: { Accept: ACCEPT } });
      assert.equal(stale.status, 200);
      assert.deepEqual(Buffer.from(await stale.arrayBuffer()), app.manifest.bytes);
      const blob = await fetch(`${berth.url}/v2/library/app/blobs/${app.layers[0]!.digest}`);
      assert.equal(hash(Buffer.from(await blob.arrayBuffer())), app.layers[0]!.digest);
      const uncached = await fetch(`${berth.url}/v2/multi/manifests/latest`);
      assert.equal(uncached.status, 500);
      await uncached.arrayBuffer();
    } finally {
      interfere = () => undefined;
    }

    interfere = () => "429";
    try {
      const stale = await fetch(berth.url + manifestPath, { headers: { Accept: ACCEPT } });
      assert.equal(stale.status, 200);
      await stale.arrayBuffer();
      const limited = await fetch(`${berth.url}/v2/multi/manifests/latest`);
      assert.equal(limited.status, 429);
      const body = (await limited.json()) as { errors: { code: string }[] };
      assert.equal(body.errors[0]!.code, "TOOMANYREQUESTS");
      // Retry-After: 30 is respected: meanwhile the upstream is not asked again.
      const asked = proxy.requests.length;
      const again = await fetch(`${berth.url}/v2/multi/manifests/latest`);
      assert.equal(again.status, 429);
      await again.arrayBuffer();
      assert.equal(proxy.requests.length, asked);
    } finally {
      interfere = () => undefined;
    }
    assert.ok(stats(berth)[0]!.staleServed >= 2);
    assert.ok(stats(berth)[0]!.upstreamErrors >= 2);
  });

  test("skopeo copies an image through the cache", async () => {
    const berth = await cache("skopeo", { remoteurl: proxy.url });
    const host = new URL(berth.url).host;
    const out = join(dir, "skopeo-out");
    await skopeoCopy(`docker://${host}/multi:latest`, `oci:${out}:latest`);
    await assertLayoutHolds(out, [indexEntry("latest", multi)]);
  });
});

describe("pull-through cache of several upstreams, with authentication", { skip }, () => {
  let dir: string;
  let plain: DockerRegistry;
  let basic: DockerRegistry;
  let bearer: UpstreamProxy;
  let berth: RunningRegistry;
  const one = buildImage({ layers: 1 });
  const two = buildImage({ layers: 1, format: "docker" });
  const three = buildImage({ layers: 1 });
  const four = buildImage({ layers: 1, gzip: true });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-proxy-auth-"));
    for (const [root, image] of [
      ["plain", one],
      ["basic", three],
    ] as const) {
      const storage = createRegistryStorage(
        await createDriver("filesystem", { rootdirectory: join(dir, root) }),
      );
      await pushImage(storage.repository("library/alpine"), image, "3");
    }
    const storage = createRegistryStorage(
      await createDriver("filesystem", { rootdirectory: join(dir, "plain") }),
    );
    await pushImage(storage.repository("team/tool"), two, "1.0");
    await pushImage(storage.repository("team/podman"), four, "1");
    const htpasswd = join(dir, "htpasswd");
    execFileSync("htpasswd", ["-Bbc", htpasswd, "cacher", "s3cret"], { stdio: "ignore" });
    plain = await startDockerRegistry(join(dir, "plain"), { deleteEnabled: false });
    basic = await startDockerRegistry(join(dir, "basic"), { deleteEnabled: false, htpasswd });
    bearer = await startUpstreamProxy(plain.url, {
      bearer: { username: "hub", password: "token-pass", expiresInSeconds: 300 },
    });
    berth = await startCache(join(dir, "cache"), {
      upstreams: [
        { prefix: "docker.io/", remoteurl: bearer.url, username: "hub", password: "token-pass" },
        { prefix: "basic.example/", remoteurl: basic.url, username: "cacher", password: "s3cret" },
      ],
    });
  });

  after(async () => {
    await berth?.close();
    await bearer?.stop();
    await basic?.stop();
    await plain?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function pull(path: string, image: TestImage): Promise<void> {
    const manifest = await fetch(berth.url + path, { headers: { Accept: ACCEPT } });
    assert.equal(manifest.status, 200, await manifest.clone().text());
    assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), image.manifest.bytes);
    const name = /^\/v2\/(.+)\/manifests\//.exec(path.split("?")[0]!)![1]!;
    const query = path.includes("?") ? path.slice(path.indexOf("?")) : "";
    const layer = await fetch(`${berth.url}/v2/${name}/blobs/${image.layers[0]!.digest}${query}`);
    assert.equal(hash(Buffer.from(await layer.arrayBuffer())), image.layers[0]!.digest);
  }

  test("a prefix selects the upstream: bearer-token challenge, token reused", async () => {
    await pull("/v2/docker.io/library/alpine/manifests/3", one);
    await pull("/v2/docker.io/team/tool/manifests/1.0", two);
    // One token per repository scope, reused for its manifest and blob requests.
    assert.equal(bearer.tokensIssued(), 2);
    assert.equal(bearer.count("GET", `/v2/library/alpine/blobs/${one.layers[0]!.digest}`), 1);
  });

  test("the ns query parameter (containerd, podman mirrors) selects the upstream too", async () => {
    const before = bearer.requests.length;
    await pull("/v2/library/alpine/manifests/3?ns=docker.io", one);
    // Cached under docker.io/library/alpine by the previous test: nothing went upstream.
    assert.equal(bearer.requests.length, before);
  });

  test("Basic credentials against distribution's htpasswd", async () => {
    await pull("/v2/basic.example/library/alpine/manifests/3", three);
    const unauthenticated = await fetch(`${basic.url}/v2/library/alpine/manifests/3`);
    assert.equal(unauthenticated.status, 401);
    await unauthenticated.arrayBuffer();
  });

  test(
    "podman pulls through the cache as a mirror (registries.conf as in docs/proxy.md)",
    { skip: skipUnlessCommands(["podman"], ["podman"]) },
    async () => {
      const host = new URL(berth.url).host;
      const podman = await podmanWithMirror(dir, `${host}/docker.io`);
      await podman(["pull", "docker.io/team/podman:1"]);
      assert.equal(bearer.count("GET", `/v2/team/podman/blobs/${four.layers[0]!.digest}`), 1);
      const inspected = await podman([
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        "docker.io/team/podman:1",
      ]);
      assert.equal(inspected.trim(), four.config.digest.slice("sha256:".length));
    },
  );

  test("repositories under no prefix stay ordinary and writable", async () => {
    const blob = Buffer.from("local content");
    const digest = hash(blob);
    const started = await fetch(`${berth.url}/v2/mine/app/blobs/uploads/`, { method: "POST" });
    assert.equal(started.status, 202);
    const location = started.headers.get("location")!;
    const url = new URL(location, berth.url);
    url.searchParams.set("digest", digest);
    const put = await fetch(url, { method: "PUT", body: blob });
    assert.equal(put.status, 201);
    const got = await fetch(`${berth.url}/v2/mine/app/blobs/${digest}`);
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), blob);
    // A prefixed repository refuses the same push.
    const refused = await fetch(`${berth.url}/v2/docker.io/mine/blobs/uploads/`, {
      method: "POST",
    });
    assert.equal(refused.status, 405);
    await refused.arrayBuffer();
  });
});
