// Test support: crash rounds against a real `berth serve` child process. Each round starts Berth on
// a storage root, runs concurrent pushes of mixed sizes and kinds (monolithic PUT, chunked PATCHes
// with Content-Range, one streamed PATCH), kills it with SIGKILL (or SIGTERM) after a delay, starts
// it again and checks: every blob answered 201 is there with its digest; every upload is at exactly
// what its last 202 acknowledged (or, when a request was cut, at that or at what the cut request
// would have added); the driver's abandoned files are gone once start-up has swept; every cut
// upload then resumes from where it reports and completes. Used by the bounded test
// (src/cli/crash.test.ts).

import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./docker-registry.js";

const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));

export interface CrashOptions {
  /** The storage root (kept: the caller removes it). */
  root: string;
  /** Where the config file goes. */
  configDir: string;
  rounds: number;
  /** Concurrent pushes per round. */
  pushes: number;
  /** The largest blob, in bytes. */
  maxSize: number;
  /** How the process is stopped; default SIGKILL. */
  signal?: NodeJS.Signals;
  /** Milliseconds after the pushes start at which to stop it, per round (cycled). */
  delays: number[];
}

export interface CrashCounts {
  rounds: number;
  pushes: number;
  /** Blobs answered 201 and found with their digest after the restart. */
  committedVerified: number;
  /** Uploads found at exactly what their last 202 acknowledged (nothing was in flight). */
  uploadsExact: number;
  /**
   * Uploads with a request cut by the crash, found between the last 202 and what the cut request
   * carried (a kill -9 keeps none of a cut PATCH, a SIGTERM what was received of it).
   */
  uploadsCut: number;
  /** Cut uploads that had completed (their PUT's 201 never reached the client). */
  completedUnseen: number;
  /**
   * Pushes the client had an acknowledgement for (a 201, or a 202 for some bytes) whose
   * acknowledged state was checked after the restart: each round stops Berth only once one exists.
   */
  acknowledgedChecked: number;
  /** Cut PUTs that had moved the data into the blob store but not linked it (a known gap). */
  movedUnlinked: number;
  /** Uploads resumed after the restart and completed with their digest. */
  resumedCompleted: number;
  /** Driver files (`~open-`, `~tmp-`) left once start-up had swept: must be 0. */
  sidecarsLeft: number;
  /** Failures: what did not hold, one line each. */
  failures: string[];
}

interface Push {
  name: string;
  content: Buffer;
  digest: string;
  kind: "monolithic" | "chunked" | "streamed";
  location?: string;
  /** Bytes the last 202 acknowledged. */
  acked: number;
  /** The request under way when the process died: a PATCH's length, or a PUT. */
  inFlight?: { patch: number } | { put: true };
  done: boolean;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A running `berth serve`. */
class Berth {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly output: () => string,
  ) {}

  static async start(config: string, url: string): Promise<Berth> {
    const child = spawn(process.execPath, [main, "serve", config], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`berth exited: ${output}`);
      if (output.includes("serving")) return new Berth(child, url, () => output);
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`berth did not start: ${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill(signal);
    await exited;
  }
}

/** The files of the driver's own below `dir` that a crash may leave (`~open-`, `~tmp-`). */
export async function abandonedFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await abandonedFiles(full)));
    else if (/~(open|tmp)-/.test(entry.name)) found.push(full);
  }
  return found;
}

function withDigest(location: string, digest: string): string {
  return `${location}${location.includes("?") ? "&" : "?"}digest=${digest}`;
}

/** Runs one push as far as it gets; records what each answer acknowledged. */
async function runPush(url: string, push: Push): Promise<void> {
  const post = await fetch(`${url}/v2/${push.name}/blobs/uploads/`, { method: "POST" });
  if (post.status !== 202) throw new Error(`POST ${post.status}`);
  push.location = post.headers.get("location")!;
  if (push.kind === "monolithic") {
    push.inFlight = { put: true };
    const put = await fetch(`${url}${withDigest(push.location, push.digest)}`, {
      method: "PUT",
      body: push.content,
    });
    if (put.status !== 201) throw new Error(`PUT ${put.status}`);
    push.done = true;
    push.inFlight = undefined;
    return;
  }
  const chunk = push.kind === "streamed" ? push.content.length : 256 * 1024;
  while (push.acked < push.content.length) {
    const end = Math.min(push.content.length, push.acked + chunk);
    push.inFlight = { patch: end - push.acked };
    const headers: Record<string, string> = { "Content-Type": "application/octet-stream" };
    if (push.kind === "chunked") headers["Content-Range"] = `${push.acked}-${end - 1}`;
    const patch = await fetch(`${url}${push.location}`, {
      method: "PATCH",
      headers,
      body: push.content.subarray(push.acked, end),
    });
    if (patch.status !== 202) throw new Error(`PATCH ${patch.status}`);
    push.acked = end;
    push.location = patch.headers.get("location")!;
    push.inFlight = undefined;
  }
  push.inFlight = { put: true };
  const put = await fetch(`${url}${withDigest(push.location, push.digest)}`, { method: "PUT" });
  if (put.status !== 201) throw new Error(`PUT ${put.status}`);
  push.done = true;
  push.inFlight = undefined;
}

/** The offset an upload reports, or undefined when it is unknown (404). */
async function uploadOffset(url: string, location: string): Promise<number | undefined> {
  const response = await fetch(`${url}${location}`);
  await response.arrayBuffer();
  if (response.status === 404) return undefined;
  if (response.status !== 204) throw new Error(`GET upload status ${response.status}`);
  const end = Number(response.headers.get("range")!.split("-")[1]);
  return end === 0 ? 0 : end + 1;
}

async function blobMatches(url: string, name: string, push: Push): Promise<boolean> {
  const response = await fetch(`${url}/v2/${name}/blobs/${push.digest}`);
  if (response.status !== 200) {
    await response.arrayBuffer();
    return false;
  }
  return sha256(Buffer.from(await response.arrayBuffer())) === push.digest;
}

/** True when the blob's data is in the root's blob store (linked in a repository or not). */
async function inBlobStore(root: string, push: Push): Promise<boolean> {
  const hex = push.digest.slice("sha256:".length);
  const data = join(root, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
  return stat(data).then(
    (info) => info.size === push.content.length,
    () => false,
  );
}

/** Checks one push after the restart and completes it; returns a failure line or undefined. */
async function checkPush(
  url: string,
  root: string,
  push: Push,
  counts: CrashCounts,
): Promise<string | undefined> {
  const label = `${push.kind} ${push.content.length} B in ${push.name}`;
  if (push.done) {
    if (!(await blobMatches(url, push.name, push))) return `${label}: 201 but not stored`;
    counts.committedVerified++;
    counts.acknowledgedChecked++;
    return undefined;
  }
  if (push.location === undefined) return undefined; // the POST was cut: nothing acknowledged
  const offset = await uploadOffset(url, push.location);
  if (offset === undefined) {
    // Only a cut PUT may have completed the upload.
    if (push.inFlight !== undefined && "put" in push.inFlight) {
      if (await blobMatches(url, push.name, push)) {
        counts.completedUnseen++;
        if (push.acked > 0) counts.acknowledgedChecked++;
        return undefined;
      }
    }
    return `${label}: upload unknown after the restart (acknowledged ${push.acked})`;
  }
  // A cut request may have kept what it received (a SIGTERM closes the writers of the requests it
  // cuts; a cut monolithic PUT may have stored its body): anything from the last 202 up to what
  // the cut request carried. Completing with the digest below proves those bytes right.
  const cut =
    push.inFlight === undefined
      ? 0
      : "patch" in push.inFlight
        ? push.inFlight.patch
        : push.kind === "monolithic"
          ? push.content.length
          : 0;
  if (cut === 0 && offset === 0 && push.inFlight !== undefined && (await inBlobStore(root, push))) {
    // Known gap: the PUT was cut after moving the data into the blob store and before linking
    // it: the upload is empty and the client pushes again (the blob is not visible meanwhile).
    counts.movedUnlinked++;
  } else if (cut === 0) {
    if (offset !== push.acked) return `${label}: at ${offset}, acknowledged ${push.acked}`;
    counts.uploadsExact++;
    if (push.acked > 0) counts.acknowledgedChecked++;
  } else {
    if (offset < push.acked || offset > push.acked + cut) {
      return `${label}: at ${offset}, acknowledged ${push.acked} (+${cut} cut)`;
    }
    counts.uploadsCut++;
    if (push.acked > 0) counts.acknowledgedChecked++;
  }
  // Resume from where it reports and complete.
  let location = push.location;
  if (offset < push.content.length) {
    const patch = await fetch(`${url}${location}`, {
      method: "PATCH",
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Range": `${offset}-${push.content.length - 1}`,
      },
      body: push.content.subarray(offset),
    });
    if (patch.status !== 202) return `${label}: resuming at ${offset}: ${patch.status}`;
    location = patch.headers.get("location")!;
  }
  const put = await fetch(`${url}${withDigest(location, push.digest)}`, { method: "PUT" });
  if (put.status !== 201) return `${label}: completing: ${put.status} ${await put.text()}`;
  if (!(await blobMatches(url, push.name, push))) return `${label}: completed but wrong`;
  counts.resumedCompleted++;
  return undefined;
}

/** Runs the rounds; returns the counts (failures listed, not thrown). */
export async function crashRounds(options: CrashOptions): Promise<CrashCounts> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(options.configDir, "config.yml");
  await writeFile(
    config,
    JSON.stringify({
      version: 0.1,
      log: { level: "error", accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: options.root },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      // A SIGTERM cuts what is still running after this: the drain is tested, not only waited for.
      http: { addr: `127.0.0.1:${port}`, draintimeout: "300ms" },
    }),
  );
  const counts: CrashCounts = {
    rounds: 0,
    pushes: 0,
    committedVerified: 0,
    uploadsExact: 0,
    uploadsCut: 0,
    completedUnseen: 0,
    acknowledgedChecked: 0,
    movedUnlinked: 0,
    resumedCompleted: 0,
    sidecarsLeft: 0,
    failures: [],
  };
  const kinds = ["monolithic", "chunked", "streamed"] as const;
  for (let round = 0; round < options.rounds; round++) {
    let berth = await Berth.start(config, url);
    const pushes: Push[] = Array.from({ length: options.pushes }, (_, index) => {
      // Every other one small, so that some complete before the stop.
      const limit = index % 2 === 0 ? 64 * 1024 : options.maxSize;
      const size = 2 + Math.floor(Math.random() * limit);
      const content = randomBytes(size);
      return {
        name: `crash/r${round}`,
        content,
        digest: sha256(content),
        kind: kinds[index % kinds.length]!,
        acked: 0,
        done: false,
      };
    });
    let settled = 0;
    const running = pushes.map((push) =>
      runPush(url, push)
        .catch(() => undefined)
        .finally(() => settled++),
    );
    await new Promise((resolve) =>
      setTimeout(resolve, options.delays[round % options.delays.length]),
    );
    // However loaded the machine, the stop comes after some acknowledgement, so that every round
    // checks at least one acknowledged push (the wait is bounded; its end is a failure, not a pass).
    const acknowledged = () => pushes.some((push) => push.done || push.acked > 0);
    for (let wait = 0; !acknowledged() && settled < pushes.length && wait < 3000; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (!acknowledged())
      counts.failures.push(`round ${round}: nothing acknowledged before the stop`);
    await berth.stop(options.signal ?? "SIGKILL");
    await Promise.all(running);
    counts.rounds++;
    counts.pushes += pushes.length;

    berth = await Berth.start(config, url);
    try {
      // Start-up sweeps in the background: wait for it (bounded) before any request of ours.
      let left = await abandonedFiles(options.root);
      for (let wait = 0; left.length > 0 && wait < 200; wait++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        left = await abandonedFiles(options.root);
      }
      counts.sidecarsLeft += left.length;
      for (const file of left) counts.failures.push(`round ${round}: left ${file}`);
      for (const push of pushes) {
        const failure = await checkPush(url, options.root, push, counts);
        if (failure !== undefined) counts.failures.push(`round ${round}: ${failure}`);
      }
    } finally {
      await berth.stop("SIGTERM");
    }
  }
  return counts;
}
