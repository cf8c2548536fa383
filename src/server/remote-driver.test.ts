// A registry whose config.yml names an out-of-process driver (`registry-storage-<name>` on PATH,
// running `berth driver-server filesystem`), as `berth serve` would run it: it serves, and an
// upload resumes after the driver's process was killed and restarted.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { driverScripts } from "../testing/driver-scripts.js";
import { sha256 } from "../testing/images.js";
import { startRegistry, type RunningRegistry } from "./index.js";

let scratch: string;
let registry: RunningRegistry;
let pidFile: string;

async function driverPid(): Promise<number> {
  return Number((await readFile(pidFile, "utf8")).trim());
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "berth-serve-remote-"));
  pidFile = join(scratch, "driver.pid");
  // `exec` keeps the shell's pid: the file names the driver process itself.
  const bin = driverScripts(join(scratch, "bin"), {
    servefs: ["filesystem", `echo $$ > ${JSON.stringify(pidFile)}`],
  });
  process.env.PATH = `${bin}:${process.env.PATH ?? ""}`;
  registry = await startRegistry({
    config: {
      version: "0.1",
      storage: { servefs: { rootdirectory: join(scratch, "root") } },
      http: { addr: "127.0.0.1:0" },
    },
    logLevel: "silent",
  });
});

after(async () => {
  await registry.close();
  await rm(scratch, { recursive: true, force: true });
});

describe("a registry on an out-of-process driver named in config.yml", () => {
  it("an upload resumes after the driver process was killed and restarted", async () => {
    const first = Buffer.alloc(300_000, 7);
    const second = Buffer.alloc(200_000, 9);
    const whole = Buffer.concat([first, second]);
    const started = await fetch(`${registry.url}/v2/ipc/app/blobs/uploads/`, { method: "POST" });
    assert.equal(started.status, 202);
    const location = new URL(started.headers.get("location")!, registry.url);
    const patched = await fetch(location, {
      method: "PATCH",
      headers: { "content-type": "application/octet-stream" },
      body: first,
    });
    assert.equal(patched.status, 202, await patched.text());
    const next = new URL(patched.headers.get("location")!, registry.url);

    const killed = await driverPid();
    process.kill(killed, "SIGKILL");
    // The registry restarts the process (with backoff); the upload's bytes are in its storage.
    let restarted = killed;
    for (let attempt = 0; attempt < 400 && restarted === killed; attempt++) {
      await sleep(25);
      restarted = await driverPid().catch(() => killed);
    }
    assert.notEqual(restarted, killed, "the driver process was restarted");

    const status = await fetch(next);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get("range"), `0-${first.length - 1}`);
    const resumed = await fetch(next, {
      method: "PATCH",
      headers: { "content-type": "application/octet-stream" },
      body: second,
    });
    assert.equal(resumed.status, 202, await resumed.text());
    const done = new URL(resumed.headers.get("location")!, registry.url);
    done.searchParams.set("digest", sha256(whole));
    const finished = await fetch(done, { method: "PUT" });
    assert.equal(finished.status, 201, await finished.text());

    const pulled = await fetch(`${registry.url}/v2/ipc/app/blobs/${sha256(whole)}`);
    assert.equal(pulled.status, 200);
    assert.ok(Buffer.from(await pulled.arrayBuffer()).equals(whole), "the blob as pushed");
  });
});
