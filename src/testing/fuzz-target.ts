// Test support: Berth as the fuzz test's target, in a child process started with --expose-gc so its
// memory can be measured after a full collection, on a filesystem root with a sentinel directory
// beside it; and the check that nothing was written outside the root or off the storage layout.

import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";

/** Memory of the target after a full garbage collection, in bytes. */
export interface TargetMemory {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** Berth serving `<dir>/root` in a child process. */
export interface FuzzTarget {
  readonly url: string;
  readonly debugUrl: string;
  /** Collects garbage in the child (twice) and returns its memory. */
  memory(): Promise<TargetMemory>;
  /** The child's exit code or signal once it has exited, else undefined. */
  exited(): string | undefined;
  /** What the child wrote to stderr. */
  output(): string;
  stop(): Promise<void>;
}

const SERVER = new URL("./fuzz-server.js", import.meta.url);
const SENTINEL_TEXT = "the fuzz test's sentinel: nothing may change this directory\n";

/** Makes `<dir>/root` (empty) and `<dir>/sentinel/keep`; returns the root. */
export async function prepareFuzzDirectory(dir: string): Promise<string> {
  const root = join(dir, "root");
  await mkdir(root, { recursive: true });
  await mkdir(join(dir, "sentinel"), { recursive: true });
  await writeFile(join(dir, "sentinel", "keep"), SENTINEL_TEXT);
  return root;
}

/** Starts Berth on `<dir>/root` with deletes enabled and its debug server (for /debug/health). */
export async function startFuzzTarget(dir: string): Promise<FuzzTarget> {
  const config = {
    version: "0.1",
    log: { level: "error", accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(dir, "root") },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: "127.0.0.1:0", debug: { addr: "127.0.0.1:0" } },
  };
  const child: ChildProcess = fork(SERVER, [JSON.stringify(config)], {
    execArgv: ["--expose-gc"],
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exit = once(child, "exit");
  const next = (): Promise<unknown> =>
    Promise.race([
      once(child, "message").then(([message]) => message as unknown),
      exit.then(() => {
        throw new Error(`the fuzz target exited (${exitText(child)}): ${stderr}`);
      }),
    ]);
  const ready = (await next()) as { url: string; debugUrl: string };
  return {
    url: ready.url,
    debugUrl: ready.debugUrl,
    async memory() {
      child.send("memory");
      return (await next()) as TargetMemory;
    },
    exited: () => (child.exitCode === null && child.signalCode === null ? undefined : exitText(child)), // prettier-ignore
    output: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.send("stop");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

function exitText(child: ChildProcess): string {
  return child.signalCode ?? `code ${child.exitCode}`;
}

const NAME = "[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*)*";
const HEX = "[0-9a-f]{64}";
const TAG = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}";
const REPO = `docker/registry/v2/repositories/${NAME}`;
/** Every file the storage layout (src/storage/paths.ts) may hold, a driver's `~` sidecars allowed. */
const LAYOUT = new RegExp(
  "^(?:" +
    [
      `docker/registry/v2/blobs/sha256/[0-9a-f]{2}/${HEX}/data`,
      `${REPO}/_layers/sha256/${HEX}/link`,
      `${REPO}/_manifests/revisions/sha256/${HEX}/link`,
      `${REPO}/_manifests/tags/${TAG}/current/link`,
      `${REPO}/_manifests/tags/${TAG}/index/sha256/${HEX}/link`,
      `${REPO}/_manifests/referrers/sha256/${HEX}/sha256/${HEX}/link`,
      `${REPO}/_uploads/[0-9a-f-]{36}/(?:data|startedat|hashstates/sha256/\\d+)`,
      `berth/(?:gc|health)/[A-Za-z0-9._/-]+`,
    ].join("|") +
    ")(?:~[A-Za-z0-9._-]+)?$",
);

/**
 * What is wrong with `dir` after a run: the sentinel changed, an entry beside `root` and
 * `sentinel` that was not there, or a file (or link) in the root off the storage layout.
 */
export async function escapes(dir: string, expectedBeside: string[] = []): Promise<string[]> {
  const problems: string[] = [];
  const beside = (await readdir(dir)).sort();
  const allowed = new Set(["root", "sentinel", ...expectedBeside]);
  for (const entry of beside) if (!allowed.has(entry)) problems.push(`new entry beside the root: ${entry}`); // prettier-ignore
  const sentinel = (await readdir(join(dir, "sentinel"))).sort();
  if (sentinel.join() !== "keep") problems.push(`sentinel directory holds ${sentinel.join(", ")}`);
  else if ((await readFile(join(dir, "sentinel", "keep"), "utf8")) !== SENTINEL_TEXT)
    problems.push("sentinel file changed");
  const root = join(dir, "root");
  const walk = async (path: string): Promise<void> => {
    for (const entry of await readdir(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (!entry.isFile() || !LAYOUT.test(relative(root, full)))
        problems.push(`${entry.isFile() ? "file" : "non-file"} off the layout: ${relative(root, full)}`); // prettier-ignore
    }
  };
  await walk(root);
  return problems;
}
