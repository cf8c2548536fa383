// The pull-through cache beyond one anonymous upstream: two Berths with authentication as
// upstreams (htpasswd, and the built-in token service's Bearer challenge); the upstream stopped
// while skopeo and podman pull what was cached; repositories expiring after their ttl unless pulled
// again, then reclaimed by garbage collection; the registry_proxy_* metrics; and a distribution
// config.yml that names only proxy.remoteurl.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { loadConfig } from "../config/index.js";
import { createDriver, PathNotFoundError } from "../driver/index.js";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { createRegistryStorage } from "../storage/index.js";
import { writeHtpasswd } from "../testing/auth.js";
import { startDockerRegistry, type DockerRegistry } from "../testing/docker-registry.js";
import { buildImage, pushImage, type TestImage } from "../testing/images.js";
import { assertLayoutHolds, imageEntry } from "../testing/oci-layout.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { captureLogger } from "../testing/logger.js";
import { podmanWithMirror } from "../testing/podman.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { ProxyRegistry } from "./index.js";

const ACCEPT = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
].join(", ");

function hash(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A Berth caching `proxy` into filesystem storage at `root`. */
function startCache(
  root: string,
  proxy: Record<string, unknown>,
  storage: Record<string, unknown> = {},
  logger?: Logger,
): Promise<RunningRegistry> {
  return startRegistry({
    ...(logger === undefined ? {} : { logger }),
    config: {
      version: "0.1",
      storage: {
        filesystem: { rootdirectory: root },
        maintenance: { uploadpurging: { enabled: false } },
        ...storage,
      },
      http: { addr: "127.0.0.1:0" },
      log: { accesslog: { disabled: true } },
      proxy,
    },
    logLevel: "silent",
  });
}

/** Pulls `image` tagged `tag` from `name` through `url`: the manifest and every blob, checked. */
async function pull(url: string, name: string, tag: string, image: TestImage): Promise<void> {
  const manifest = await fetch(`${url}/v2/${name}/manifests/${tag}`, {
    headers: { Accept: ACCEPT },
  });
  assert.equal(manifest.status, 200, await manifest.clone().text());
  assert.deepEqual(Buffer.from(await manifest.arrayBuffer()), image.manifest.bytes);
  for (const blob of [image.config, ...image.layers]) {
    const response = await fetch(`${url}/v2/${name}/blobs/${blob.digest}`);
    assert.equal(response.status, 200);
    assert.equal(hash(Buffer.from(await response.arrayBuffer())), blob.digest);
  }
}

function proxyOf(cache: RunningRegistry): ProxyRegistry {
  assert.ok(cache.storage instanceof ProxyRegistry);
  return cache.storage;
}

describe(
  "two Berths with authentication as upstreams",
  { skip: skipUnlessCommands(["htpasswd"], ["apache2-utils"]) },
  () => {
    let dir: string;
    let basic: RunningRegistry;
    let token: RunningRegistry;
    let cache: RunningRegistry;
    const one = buildImage({ layers: 2 });
    const two = buildImage({ layers: 1, gzip: true });

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "berth-proxy-berths-"));
      const users = join(dir, "htpasswd");
      await writeHtpasswd(users, { cacher: "cacher-pw", other: "other-pw" });
      const accesscontrol = {
        repositories: { "team/**": { policies: [{ users: ["cacher"], actions: ["pull"] }] } },
      };
      basic = await startRegistry({
        driver: "inmemory",
        auth: { htpasswd: { realm: "upstream", path: users }, accesscontrol },
        logLevel: "silent",
      });
      token = await startRegistry({
        driver: "inmemory",
        auth: {
          token: {
            realm: "unused",
            autoredirect: true,
            service: "upstream.test",
            issuer: "berth",
            issue: { users, key: join(dir, "signing.pem") },
          },
          accesscontrol,
        },
        logLevel: "silent",
      });
      // Pushed through the storage layer, under the upstreams' auth.
      await pushImage(basic.storage.repository("team/app"), one, "v1");
      await pushImage(token.storage.repository("team/app"), two, "v2");
      cache = await startCache(join(dir, "cache"), {
        upstreams: [
          {
            prefix: "basic.test/",
            remoteurl: basic.url,
            username: "cacher",
            password: "cacher-pw",
          },
          {
            prefix: "token.test/",
            remoteurl: token.url,
            username: "cacher",
            password: "cacher-pw",
          },
          { prefix: "denied.test/", remoteurl: basic.url, username: "other", password: "other-pw" },
          { prefix: "wrong.test/", remoteurl: token.url, username: "cacher", password: "nope" },
        ],
      });
    });

    after(async () => {
      await cache?.close();
      await token?.close();
      await basic?.close();
      await rm(dir, { recursive: true, force: true });
    });

    test("a Berth with htpasswd and a Berth with its token service serve the cache", async () => {
      await pull(cache.url, "basic.test/team/app", "v1", one);
      await pull(cache.url, "token.test/team/app", "v2", two);
      // Hits from now on: the upstreams are not asked again while the ttl runs.
      await pull(cache.url, "basic.test/team/app", "v1", one);
      const stats = proxyOf(cache).stats();
      const basicStats = stats.find((upstream) => upstream.prefix === "basic.test/")!;
      assert.equal(basicStats.byType.blob.misses, 3);
      assert.equal(basicStats.byType.manifest.misses, 1);
      assert.ok(basicStats.byType.blob.hits >= 3);
      const tokenStats = stats.find((upstream) => upstream.prefix === "token.test/")!;
      assert.equal(tokenStats.tokensFetched, 1, "one token for team/app, reused");
      assert.equal(tokenStats.upstreamErrors, 0);
    });

    test("credentials the upstream refuses: the pull fails and counts an upstream error", async () => {
      for (const prefix of ["denied.test/", "wrong.test/"]) {
        const response = await fetch(`${cache.url}/v2/${prefix}team/app/manifests/v1`, {
          headers: { Accept: ACCEPT },
        });
        assert.notEqual(response.status, 200, prefix);
        assert.ok(response.status >= 400, `${prefix}: ${response.status}`);
        await response.arrayBuffer();
        const stats = proxyOf(cache)
          .stats()
          .find((upstream) => upstream.prefix === prefix)!;
        assert.ok(stats.upstreamErrors >= 1, `${prefix}: ${JSON.stringify(stats)}`);
      }
    });

    test("registry_proxy_* metrics per upstream and type, distribution's names", async () => {
      const text = await cache.metrics.scrape();
      const line = (name: string, labels: string): number => {
        const found = text
          .split("\n")
          .find((candidate) => candidate.startsWith(`${name}{`) && candidate.includes(labels));
        assert.ok(found !== undefined, `${name} ${labels} in\n${text}`);
        return Number(found.slice(found.lastIndexOf(" ") + 1));
      };
      const basicLabels = `prefix="basic.test/",type="blob"`;
      assert.equal(line("registry_proxy_misses_total", basicLabels), 3);
      assert.ok(line("registry_proxy_hits_total", basicLabels) >= 3);
      assert.ok(line("registry_proxy_pulled_bytes_total", basicLabels) > 0);
      assert.equal(
        line("registry_proxy_requests_total", basicLabels),
        line("registry_proxy_hits_total", basicLabels) + 3,
      );
      assert.ok(line("registry_proxy_upstream_errors_total", `prefix="wrong.test/"`) >= 1);
      assert.ok(line("registry_proxy_upstream_requests_total", `prefix="token.test/"`) >= 4);
    });
  },
);

describe(
  "the upstream stopped",
  { skip: skipUnlessCommands(["docker-registry", "skopeo"], ["docker-registry", "skopeo"]) },
  () => {
    let dir: string;
    let upstream: DockerRegistry | undefined;
    let cache: RunningRegistry;
    const image = buildImage({ layers: 2, gzip: true });

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "berth-proxy-down-"));
      const root = join(dir, "upstream");
      const storage = createRegistryStorage(
        await createDriver("filesystem", { rootdirectory: root }),
      );
      await pushImage(storage.repository("team/app"), image, "v1");
      upstream = await startDockerRegistry(root, { deleteEnabled: false });
      // ttl 0s: every tag is revalidated upstream (and nothing expires), so the pulls below
      // really meet the stopped upstream and are served stale.
      cache = await startCache(join(dir, "cache"), {
        upstreams: [{ prefix: "docker.io/", remoteurl: upstream.url, ttl: "0s" }],
      });
      const host = new URL(cache.url).host;
      await skopeoCopy(`docker://${host}/docker.io/team/app:v1`, `oci:${join(dir, "warm")}:v1`);
      await upstream.stop();
      upstream = undefined;
    });

    after(async () => {
      await cache?.close();
      await upstream?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test("skopeo still copies the cached image", async () => {
      const host = new URL(cache.url).host;
      const out = join(dir, "skopeo-out");
      await skopeoCopy(`docker://${host}/docker.io/team/app:v1`, `oci:${out}:v1`);
      await assertLayoutHolds(out, [imageEntry("v1", image)]);
      assert.ok(proxyOf(cache).stats()[0]!.staleServed >= 1);
    });

    test(
      "podman still pulls it through the mirror",
      { skip: skipUnlessCommands(["podman"], ["podman"]) },
      async () => {
        const host = new URL(cache.url).host;
        const podman = await podmanWithMirror(dir, `${host}/docker.io`);
        await podman(["pull", "docker.io/team/app:v1"]);
        const inspected = await podman([
          "image",
          "inspect",
          "--format",
          "{{.Id}}",
          "docker.io/team/app:v1",
        ]);
        assert.equal(inspected.trim(), image.config.digest.slice("sha256:".length));
      },
    );
  },
);

describe(
  "cached repositories expire after their ttl unless pulled again",
  { skip: skipUnlessCommands(["docker-registry"], ["docker-registry"]) },
  () => {
    let dir: string;
    let upstream: DockerRegistry;
    const kept = buildImage({ layers: 1 });
    const dropped = buildImage({ layers: 1 });

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "berth-proxy-expiry-"));
      const root = join(dir, "upstream");
      const storage = createRegistryStorage(
        await createDriver("filesystem", { rootdirectory: root }),
      );
      await pushImage(storage.repository("team/kept"), kept, "v1");
      await pushImage(storage.repository("team/dropped"), dropped, "v1");
      upstream = await startDockerRegistry(root, { deleteEnabled: false });
    });

    after(async () => {
      await upstream?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test("the one nobody pulls goes, garbage collection reclaims its blobs, a pull brings it back", async () => {
      const root = join(dir, "cache");
      // gc.delay 0s: the collector below may take what became unreferenced at once.
      const cache = await startCache(
        root,
        { remoteurl: upstream.url, ttl: "3s" },
        { maintenance: { uploadpurging: { enabled: false }, gc: { delay: "0s" } } },
      );
      try {
        await pull(cache.url, "team/kept", "v1", kept);
        await pull(cache.url, "team/dropped", "v1", dropped);
        const proxy = proxyOf(cache);
        assert.ok(await proxy.repositoryExists("team/dropped"));

        // Keep pulling one of them while the other's ttl runs out.
        let expired = false;
        for (let round = 0; round < 120 && !expired; round++) {
          await pull(cache.url, "team/kept", "v1", kept);
          await sleep(250);
          expired = !(await proxy.repositoryExists("team/dropped"));
        }
        assert.ok(expired, "team/dropped expired");
        assert.ok(await proxy.repositoryExists("team/kept"), "team/kept was pulled: it stays");
        assert.deepEqual(await proxy.catalog(), ["team/kept"]);

        // Its blobs are ordinary unreferenced content now: the collector takes them.
        const result = await cache.storage.garbageCollect({ delayMs: 0 });
        assert.ok(result.deletedBlobs.includes(dropped.layers[0]!.digest), JSON.stringify(result));
        const driver = await createDriver("filesystem", { rootdirectory: root });
        const layer = dropped.layers[0]!.digest.slice("sha256:".length);
        await assert.rejects(
          driver.stat(`/docker/registry/v2/blobs/sha256/${layer.slice(0, 2)}/${layer}/data`),
          PathNotFoundError,
        );
        const keptLayer = kept.layers[0]!.digest.slice("sha256:".length);
        await driver.stat(
          `/docker/registry/v2/blobs/sha256/${keptLayer.slice(0, 2)}/${keptLayer}/data`,
        );

        // A later pull fetches it again.
        await pull(cache.url, "team/dropped", "v1", dropped);
        assert.ok(await proxy.repositoryExists("team/dropped"));
      } finally {
        await cache.close();
      }

      // The pull times survive a restart: a repository is not given a fresh ttl by one.
      const { logger, lines } = captureLogger();
      const restarted = await startCache(root, { remoteurl: upstream.url, ttl: "1h" }, {}, logger);
      try {
        const at = proxyOf(restarted).expiry.lastPull("team/kept");
        const age = at === undefined ? undefined : Date.now() - at;
        const context = `last pull ${age} ms ago; log: ${JSON.stringify(lines)}`;
        assert.ok(age !== undefined && age > 0 && age < 60_000, context);
      } finally {
        await restarted.close();
      }
    });
  },
);

describe(
  "a distribution config.yml with only proxy.remoteurl",
  { skip: skipUnlessCommands(["docker-registry"], ["docker-registry"]) },
  () => {
    test("starts Berth as distribution's pull-through cache (file and environment)", async () => {
      const dir = await mkdtemp(join(tmpdir(), "berth-proxy-config-"));
      const image = buildImage({ layers: 1 });
      const root = join(dir, "upstream");
      const storage = createRegistryStorage(
        await createDriver("filesystem", { rootdirectory: root }),
      );
      await pushImage(storage.repository("library/alpine"), image, "3.20");
      const upstream = await startDockerRegistry(root, { deleteEnabled: false });
      const file = join(dir, "config.yml");
      // As distribution's docs write it: the storage, the http address and proxy.remoteurl.
      const lines = [
        "version: 0.1",
        "log:",
        "  fields:",
        "    service: registry",
        "storage:",
        "  cache:",
        "    blobdescriptor: inmemory",
        "  filesystem:",
        `    rootdirectory: ${join(dir, "cache")}`,
        "http:",
        "  addr: 127.0.0.1:0",
        "  headers:",
        "    X-Content-Type-Options: [nosniff]",
      ];
      await writeFile(file, [...lines, "proxy:", `  remoteurl: ${upstream.url}`, ""].join("\n"));
      // The same without the proxy section, given by the environment instead.
      const bare = join(dir, "bare.yml");
      await writeFile(bare, [...lines, ""].join("\n"));
      try {
        for (const [path, env] of [
          [file, {}],
          [bare, { REGISTRY_PROXY_REMOTEURL: upstream.url }],
        ] as const) {
          const config = await loadConfig(path, env);
          assert.equal(config.proxy.upstreams[0]?.remoteURL, upstream.url, path);
          const cache = await startRegistry({ config, logLevel: "silent" });
          try {
            await pull(cache.url, "library/alpine", "3.20", image);
            const push = await fetch(`${cache.url}/v2/library/alpine/blobs/uploads/`, {
              method: "POST",
            });
            assert.equal(push.status, 405);
            await push.arrayBuffer();
          } finally {
            await cache.close();
          }
        }
      } finally {
        await upstream.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  },
);
