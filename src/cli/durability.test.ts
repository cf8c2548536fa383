// What a push makes durable before it is acknowledged, read from the system calls of a real
// `berth serve` (strace -f): a machine crash may not take a blob or a link a client was told is
// stored. The upload's own files (`startedat`, the name `_uploads/<id>/data`) are not synced on
// purpose (docs/performance.md, "Small pushes, per-push work"); the blob's bytes, its name in
// `blobs/`, the link's bytes and the link's name are, each before the 201 is written.
//
// Order is reliable under strace: a thread stopped at a call's exit is not resumed until strace
// has printed it, so a call that waited for another's result is always printed after it.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import assert from "node:assert/strict";
import { test } from "node:test";
import { freePort } from "../testing/docker-registry.js";
import { eventually } from "../testing/eventually.js";
import { skipUnlessCommands } from "../testing/tools.js";

const main = fileURLToPath(new URL("./main.js", import.meta.url));

interface Call {
  name: string;
  /** The arguments and result as strace prints them (paths of descriptors included, -y). */
  text: string;
}

/** strace -f output as completed calls in the order they returned. */
function parseTrace(output: string): Call[] {
  const pending = new Map<string, string>();
  const calls: Call[] = [];
  for (const line of output.split("\n")) {
    const match = /^(\d+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const [, pid, rest] = match as unknown as [string, string, string];
    if (rest.endsWith("<unfinished ...>")) {
      pending.set(pid, rest.slice(0, -"<unfinished ...>".length));
      continue;
    }
    const resumed = /^<\.\.\. (\w+) resumed>(.*)$/.exec(rest);
    const text = resumed === null ? rest : `${pending.get(pid) ?? ""}${resumed[2]}`;
    if (resumed !== null) pending.delete(pid);
    const name = /^(\w+)\(/.exec(text)?.[1];
    if (name !== undefined) calls.push({ name, text });
  }
  return calls;
}

/** The index of the first call at or after `from` that `matches`, or -1. */
function find(calls: Call[], from: number, matches: (call: Call) => boolean): number {
  for (let index = Math.max(0, from); index < calls.length; index++) {
    if (matches(calls[index]!)) return index;
  }
  return -1;
}

/**
 * Stops the process strace (`tracer`) runs with `signal`; strace then ends with it. (strace itself
 * does not pass a SIGTERM on to the process it started.)
 */
async function stopTraced(tracer: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const children = await readFile(`/proc/${tracer}/task/${tracer}/children`, "utf8").catch(
    () => "",
  );
  for (const pid of children.trim().split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), signal);
    } catch {
      // Gone already.
    }
  }
}

/** The first rename at or after `from` onto `target`: its index and its source. */
function renameInto(
  calls: Call[],
  from: number,
  target: string,
): { index: number; source: string } {
  const index = find(
    calls,
    from,
    (call) => call.name === "rename" && call.text.includes(`"${target}"`),
  );
  assert.ok(index >= 0, `no rename onto ${target}`);
  return { index, source: /^rename\("([^"]+)"/.exec(calls[index]!.text)![1]! };
}

/** True when a descriptor whose path starts with `prefix` (after `<`) was synced before `index`. */
function syncedBefore(calls: Call[], index: number, prefix: string): boolean {
  return calls
    .slice(0, index)
    .some(
      (call) => (call.name === "fsync" || call.name === "fdatasync") && call.text.includes(prefix),
    );
}

const synced = (path: string) => (call: Call) => syncedBefore([call], 1, `<${path}>`);

test(
  "a push syncs the blob, its name, the link and the link's name before its 201 (strace)",
  { skip: skipUnlessCommands(["strace"], ["strace"]), timeout: 60_000 },
  async () => {
    const work = await mkdtemp(join(tmpdir(), "berth-durability-"));
    const root = join(work, "root");
    const port = await freePort();
    const config = join(work, "config.yml");
    await writeFile(
      config,
      JSON.stringify({
        version: 0.1,
        log: { level: "warn" },
        storage: { filesystem: { rootdirectory: root } },
        http: { addr: `127.0.0.1:${port}` },
      }),
    );
    const trace = join(work, "trace");
    const child = spawn(
      "strace",
      ["-f", "-qq", "-y", "-s", "24", "-e", "trace=fsync,fdatasync,rename,write,writev"].concat([
        "-o",
        trace,
        process.execPath,
        main,
        "serve",
        config,
      ]),
      { stdio: "ignore" },
    );
    const exited = once(child, "exit");
    const base = `http://127.0.0.1:${port}/v2/durable/blobs`;
    try {
      await eventually(
        () =>
          fetch(`http://127.0.0.1:${port}/v2/`).then(
            (response) => response.status === 200,
            () => false,
          ),
        30_000,
      );
      // A monolithic push (the data arrives with the PUT) and a chunked one (PATCH, then a PUT
      // without a body): the two ways an upload's data is committed.
      const pushes: { digest: string; hex: string }[] = [];
      for (const chunked of [false, true]) {
        const bytes = Buffer.from(`durable ${chunked ? "chunked" : "monolithic"} blob`);
        const hex = createHash("sha256").update(bytes).digest("hex");
        const digest = `sha256:${hex}`;
        const post = await fetch(`${base}/uploads/`, { method: "POST" });
        assert.equal(post.status, 202);
        let location = new URL(post.headers.get("location")!, base);
        if (chunked) {
          const patch = await fetch(location, {
            method: "PATCH",
            headers: { "content-type": "application/octet-stream" },
            body: bytes,
          });
          assert.equal(patch.status, 202);
          location = new URL(patch.headers.get("location")!, base);
        }
        location.searchParams.set("digest", digest);
        const put = await fetch(location, {
          method: "PUT",
          headers: { "content-type": "application/octet-stream" },
          body: chunked ? undefined : bytes,
        });
        assert.equal(put.status, 201, await put.text());
        pushes.push({ digest, hex });
      }
      await stopTraced(child.pid!);
      await exited;
      const calls = parseTrace(await readFile(trace, "utf8"));
      assert.ok(calls.length > 0, "strace recorded nothing");
      const v2 = join(root, "docker/registry/v2");
      let from = 0;
      for (const { hex } of pushes) {
        const blobDir = join(v2, "blobs/sha256", hex.slice(0, 2), hex);
        const linkDir = join(v2, "repositories/durable/_layers/sha256", hex);
        // The data is renamed into blobs/: its bytes were synced before (under the upload's name,
        // or a hidden one beside the blob's where the PUT carried them all), the blob's directory
        // after.
        const moved = renameInto(calls, from, `${blobDir}/data`);
        const uploadDir = moved.source.slice(0, moved.source.lastIndexOf("/"));
        assert.ok(
          syncedBefore(calls, moved.index, `<${uploadDir}/data`),
          `the data was not synced before its rename into ${blobDir}`,
        );
        const blobDirSync = find(calls, moved.index + 1, synced(blobDir));
        assert.ok(blobDirSync > moved.index, `${blobDir} not synced after the rename`);
        // The link: written to a temporary file, synced, renamed, its directory synced.
        const linked = renameInto(calls, from, `${linkDir}/link`);
        assert.ok(
          syncedBefore(calls, linked.index, `<${linked.source}>`),
          `the link was not synced before its rename`,
        );
        const linkDirSync = find(calls, linked.index + 1, synced(linkDir));
        assert.ok(linkDirSync > linked.index, `${linkDir} not synced after the rename`);
        // Then, and only then, the 201: the first one since the push started comes after them.
        const created = find(
          calls,
          from,
          (call) =>
            (call.name === "write" || call.name === "writev") && call.text.includes("HTTP/1.1 201"),
        );
        assert.ok(created > Math.max(blobDirSync, linkDirSync), "the 201 came before the syncs");
        from = created + 1;
      }
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        await stopTraced(child.pid!, "SIGKILL");
        child.kill("SIGKILL");
        await exited;
      }
      await rm(work, { recursive: true, force: true });
    }
  },
);
