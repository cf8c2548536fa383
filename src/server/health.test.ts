// config.yml's `health` checks, periodic as distribution's: the storage driver probed for real
// (deleting the storage root fails it within one interval), files, HTTP URIs and TCP addresses.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { freePort } from "../testing/docker-registry.js";
import { eventually } from "../testing/eventually.js";
import { startRegistry } from "./index.js";

async function health(url: string): Promise<{ status: number; body: Record<string, string> }> {
  const response = await fetch(`${url}/debug/health`);
  return { status: response.status, body: (await response.json()) as Record<string, string> };
}

describe("health checks", () => {
  it("fails storagedriver within one interval of the storage root being deleted, without leaking it", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-health-"));
    const root = join(directory, "data");
    const registry = await startRegistry({
      config: {
        version: "0.1",
        storage: { filesystem: { rootdirectory: root } },
        http: { addr: "127.0.0.1:0", debug: { addr: "127.0.0.1:0" } },
        health: { storagedriver: { enabled: true, interval: "300ms" } },
      },
      logLevel: "silent",
    });
    try {
      // The probe is written by the first check, one interval after start.
      await new Promise((resolve) => setTimeout(resolve, 700));
      assert.deepEqual(await health(registry.url), { status: 200, body: {} });
      // Retried: a check may write its probe while the tree is being removed (ENOTEMPTY).
      await rm(root, { recursive: true, force: true, maxRetries: 10 });
      // The next check (one 300 ms interval) fails; the bound is loose for a loaded machine.
      await eventually(async () => (await health(registry.url)).status === 503, 3_000);
      for (const url of [registry.url, registry.debugUrl!]) {
        const { body } = await health(url);
        assert.deepEqual(Object.keys(body), ["storagedriver_filesystem"]);
        // The driver may find the probe gone, or refuse to work in a root that vanished.
        assert.match(
          body.storagedriver_filesystem!,
          /^storage (content is gone|driver unavailable)$/,
        );
        assert.doesNotMatch(JSON.stringify(body), new RegExp(directory));
      }
    } finally {
      await registry.close();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("fails a file check while the file exists, and HTTP and TCP checks whose peer fails", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-health-"));
    const marker = join(directory, "out-of-rotation");
    let status = 200;
    const peer = createServer((_req, res) => res.writeHead(status).end());
    await new Promise<void>((resolve) => peer.listen(0, "127.0.0.1", resolve));
    const peerPort = (peer.address() as { port: number }).port;
    const closedPort = await freePort();
    const registry = await startRegistry({
      config: {
        version: "0.1",
        storage: { inmemory: {} },
        http: { addr: "127.0.0.1:0" },
        health: {
          file: [{ file: marker, interval: "100ms" }],
          http: [{ uri: `http://user:pw@127.0.0.1:${peerPort}/ping?token=t`, interval: "100ms" }],
          tcp: [
            { addr: `127.0.0.1:${peerPort}`, interval: "100ms", timeout: "1s" },
            { addr: `127.0.0.1:${closedPort}`, interval: "100ms", threshold: 2 },
          ],
        },
      },
      logLevel: "silent",
    });
    const closedName = `127.0.0.1:${closedPort}`;
    try {
      await eventually(async () => (await health(registry.url)).body[closedName] !== undefined);
      assert.deepEqual((await health(registry.url)).body, { [closedName]: "connection failed" });

      await writeFile(marker, "");
      status = 503;
      await eventually(async () => Object.keys((await health(registry.url)).body).length === 3);
      const { status: code, body } = await health(registry.url);
      assert.equal(code, 503);
      assert.deepEqual(body, {
        [closedName]: "connection failed",
        "file_out-of-rotation": "file exists",
        [`http://127.0.0.1:${peerPort}/ping`]: "downstream service returned unexpected status: 503",
      });
      assert.doesNotMatch(JSON.stringify(body), /pw|token|berth-health/);

      await rm(marker);
      status = 200;
      await eventually(async () => Object.keys((await health(registry.url)).body).length === 1);
    } finally {
      await registry.close();
      peer.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
