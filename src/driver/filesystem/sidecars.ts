// The filesystem driver's own files left behind by a crash (kill -9, power loss, a failed close):
// telling them from files in use, giving a dead writer's bytes back to its path, and sweeping the
// tree for the rest.
//
// Whose file is it? Its name carries `<host>.<pid>.<random>` of the process that made it (fs.ts):
// - this process: in use while a writer or putContent holds it (the driver's `live` set);
// - another process of this host: abandoned when that pid is gone, or is this process's pid with
//   other random bytes (a container restarted as pid 1);
// - another host (or a name without an owner, from an older Berth): abandoned once it has not
//   been modified for STALE_AFTER_MS. A writer in use is written to while its request streams,
//   and the server's timeouts end a request long before that.
//
// An abandoned writer's file (`~open-`) holds the bytes acknowledged before its writer started (its
// `base`, in the name) and whatever arrived after, unacknowledged and possibly with holes (batches
// are written in parallel): it is cut back to `base` and becomes the path's closed writer again,
// so the upload resumes from exactly what was acknowledged. Abandoned `~tmp-` files are removed.

import { link, truncate } from "node:fs/promises";
import type { Dirent } from "node:fs";
import { basename, dirname, join } from "node:path";
import {
  HOST_TAG,
  PROCESS_RANDOM,
  STORED_NAME,
  closedWriterName,
  errorCode,
  lstat,
  readdir,
  unlink,
} from "./fs.js";

/**
 * This process's own files in use (writers' and putContent's), whatever driver instance made them
 * (tests and tools open several on one root): never reclaimed.
 */
export const liveFiles = new Set<string>();

/** How long another host's file must sit unmodified before it counts as abandoned: one hour. */
export const STALE_AFTER_MS = 60 * 60 * 1000;

const SIDECAR =
  /~(open|tmp)-(?:([0-9a-f]{8})\.([0-9a-z]+)\.([0-9a-f]{12})-[0-9a-z]+(?:\.([0-9a-z]+))?|.*)$/;

interface Sidecar {
  kind: "open" | "tmp";
  /** The stored path's file name it belongs to. */
  target: string;
  host?: string;
  pid?: number;
  random?: string;
  /** For a writer's file: the size it started at. */
  base?: number;
}

export function parseSidecar(name: string): Sidecar | undefined {
  const match = SIDECAR.exec(name);
  if (match === null) return undefined;
  const [, kind, host, pid, random, base] = match;
  const target = name.slice(0, match.index);
  if (!STORED_NAME.test(target)) return undefined;
  return {
    kind: kind as "open" | "tmp",
    target,
    host,
    pid: pid === undefined ? undefined : parseInt(pid, 36),
    random,
    base: base === undefined ? undefined : parseInt(base, 36),
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) !== "ESRCH";
  }
}

/**
 * True when the file `full` (parsed as `sidecar`) belongs to nobody: see the top of this file.
 * `live` holds this process's files in use.
 */
export async function isAbandoned(
  full: string,
  sidecar: Sidecar,
  live: ReadonlySet<string>,
): Promise<boolean> {
  if (sidecar.host === HOST_TAG && sidecar.pid !== undefined) {
    if (sidecar.pid === process.pid) {
      return sidecar.random !== PROCESS_RANDOM || !live.has(full);
    }
    if (!processAlive(sidecar.pid)) return true;
  }
  // lstat: a link is not the driver's and is never followed (it may point out of the root).
  const info = await lstat(full);
  return Date.now() - info.mtimeMs > STALE_AFTER_MS;
}

/**
 * Gives the bytes of an abandoned writer of `full` back as its closed writer, cut to what was
 * acknowledged. True when `full` has a closed writer afterwards (recovered here or by someone else).
 */
export async function recoverWriter(full: string, live: ReadonlySet<string>): Promise<boolean> {
  const dir = dirname(full);
  const name = basename(full);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return false;
  }
  let best: { file: string; base: number | undefined } | undefined;
  for (const entry of entries) {
    if (!entry.startsWith(`${name}~open-`)) continue;
    const sidecar = parseSidecar(entry);
    if (sidecar === undefined || sidecar.target !== name) continue;
    const file = join(dir, entry);
    try {
      if (!(await isAbandoned(file, sidecar, live))) continue;
    } catch {
      continue;
    }
    // Several (rare): the one that started furthest on holds the most that was acknowledged.
    if (best === undefined || (sidecar.base ?? 0) > (best.base ?? 0)) {
      best = { file, base: sidecar.base };
    }
  }
  if (best === undefined) return false;
  return reclaimWriter(best.file, full, best.base);
}

/** Cuts `file` to `base` and links it as `full`'s closed writer (never over one). */
async function reclaimWriter(
  file: string,
  full: string,
  base: number | undefined,
): Promise<boolean> {
  try {
    // Only a regular file of the driver's: truncate would follow a link out of the root.
    if (!(await lstat(file)).isFile()) return false;
    if (base !== undefined) await truncate(file, base);
    await link(file, closedWriterName(full));
  } catch (error) {
    if (errorCode(error) === "EEXIST") return true;
    return false;
  }
  await unlink(file).catch(() => {});
  return true;
}

export interface SweepResult {
  /** Abandoned writers given back to their paths. */
  recovered: number;
  /** Abandoned files removed. */
  removed: number;
}

/**
 * Walks the tree below `root` one call at a time (it runs in the background beside requests) and
 * deals with every abandoned file of the driver's; `removeEmpty` prunes a directory left empty.
 * Files that vanish while it looks (a request finished them) are skipped.
 */
export async function sweep(
  root: string,
  live: ReadonlySet<string>,
  removeEmpty: (dir: string) => Promise<void>,
): Promise<SweepResult> {
  const result: SweepResult = { recovered: 0, removed: 0 };
  const visit = async (dir: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    const names = new Set(entries.map((entry) => entry.name));
    let touched = false;
    for (const entry of entries) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        await visit(full);
        continue;
      }
      const sidecar = parseSidecar(entry.name);
      if (sidecar === undefined) continue;
      try {
        if (!(await isAbandoned(full, sidecar, live))) continue;
        const target = join(dir, sidecar.target);
        if (
          sidecar.kind === "open" &&
          !names.has(sidecar.target) &&
          !names.has(`${sidecar.target}~writer`)
        ) {
          if (await reclaimWriter(full, target, sidecar.base)) {
            names.add(`${sidecar.target}~writer`);
            result.recovered++;
          }
          continue;
        }
        await unlink(full);
        result.removed++;
        touched = true;
      } catch (error) {
        if (errorCode(error) !== "ENOENT") continue;
      }
    }
    if (touched) await removeEmpty(dir);
  };
  await visit(root);
  return result;
}
