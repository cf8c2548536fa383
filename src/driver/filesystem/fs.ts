// The filesystem driver's calls into node:fs and the names of its own files (see driver.ts for
// what they are): shared by the driver, its writer and its copy.

import { createHash, randomBytes } from "node:crypto";
import { hostname } from "node:os";
import {
  constants,
  close as closeCallback,
  fdatasync as fdatasyncCallback,
  fstat as fstatCallback,
  fsync as fsyncCallback,
  ftruncate as ftruncateCallback,
  lstat as lstatCallback,
  mkdir as mkdirCallback,
  open as openCallback,
  read as readCallback,
  readdir as readdirCallback,
  readFile as readFileCallback,
  realpath as realpathCallback,
  rename as renameCallback,
  rmdir as rmdirCallback,
  stat as statCallback,
  link as linkCallback,
  unlink as unlinkCallback,
  type Dirent,
} from "node:fs";
import { opendir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

export { writeAll } from "../append.js";

export const NAME = "filesystem";

/** Names a storage path can have; every other name in the tree is one of the driver's own files. */
export const STORED_NAME = /^[A-Za-z0-9._-]+$/;

/**
 * File system errors that mean "nothing (usable) is at this path". ELOOP is a symbolic link where
 * the driver opened with O_NOFOLLOW, or one leading out of the root (see outsideRoot): the driver
 * never makes links, so one in the tree is not something it stored.
 */
export const NOT_FOUND = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ELOOP"]);

/** open(2) flags: reading and updating without following a symbolic link at the last component. */
export const READ_NOFOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;
export const UPDATE_NOFOLLOW = constants.O_RDWR | constants.O_NOFOLLOW;
/** open(2) flags of touch: create or truncate (which updates the mtime), no link followed. */
export const TOUCH_NOFOLLOW =
  constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;

/** The error for a directory whose real path is outside the root (a planted symbolic link). */
export function outsideRoot(dir: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${dir} leads out of the storage root through a symbolic link`), {
    code: "ELOOP",
  });
}

/**
 * Request paths call the file system through the callback API, promisified, and the small-file
 * paths (getContent, putContent, writers, directory syncs) work on plain file descriptors: each
 * call of node:fs/promises costs the event loop about twice as much, a failing one three times
 * (measured, 16 at once: stat 11 → 6 µs, failing rmdir 23 → 8 µs; the 8 calls of a putContent
 * through a FileHandle 200 → 100 µs), and small pushes are limited by the event loop. Every
 * descriptor is closed on every path (there is no FileHandle to close a leaked one). Readers and
 * copyTo keep FileHandles (their streams and large reads gain nothing from this).
 */
export const lstat = promisify(lstatCallback);
export const mkdir = promisify(mkdirCallback);
export const readdir = promisify(readdirCallback);
export const rename = promisify(renameCallback);
export const realpath = promisify(realpathCallback);
export const rmdir = promisify(rmdirCallback);
export const stat = promisify(statCallback);
export const unlink = promisify(unlinkCallback);
export const link = promisify(linkCallback);
export const fdOpen = promisify(openCallback);
export const fdRead = promisify(readCallback);
export const fdReadFile = promisify(readFileCallback);
export const fdSync = promisify(fsyncCallback);
export const fdDataSync = promisify(fdatasyncCallback);
export const fdStat = promisify(fstatCallback);
export const fdTruncate = promisify(ftruncateCallback);
export const fdClose = promisify(closeCallback);

/** How often an operation retries when a concurrent delete removed the directory it works in. */
export const RETRIES = 5;

export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * `mkdir -p dir`. A concurrent delete may remove an ancestor it has just created (a sweep emptying
 * `/berth/gc/trash` while another moves a blob there): recursive mkdir then fails with ENOENT (or
 * ENOTDIR, when the ancestor went between its EEXIST and its check), and it starts again. A file
 * truly in the way still fails, after the retries.
 */
export async function makeDirectory(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(dir, { recursive: true });
      return;
    } catch (error) {
      const code = errorCode(error);
      if ((code !== "ENOENT" && code !== "ENOTDIR") || attempt >= RETRIES) throw error;
    }
  }
}

/**
 * Unique among the processes sharing a root, and telling who wrote a file: a tag of this host (its
 * name hashed, so names stay short and portable), the process id and random bytes drawn once, as
 * `<host>.<pid>.<random>`. A counter makes each name unique within the process, without drawing
 * entropy per name (randomBytes per temporary file showed in the small-push profile). The sweep
 * (sidecars.ts) reads the owner back to tell an abandoned file from one in use.
 */
export const HOST_TAG = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);
export const PROCESS_RANDOM = randomBytes(6).toString("hex");
const SIDECAR_PREFIX = `${HOST_TAG}.${process.pid.toString(36)}.${PROCESS_RANDOM}`;
let sidecarCounter = 0;

/**
 * A fresh name for one of the driver's own files next to `full`. A writer's file also names the
 * size it started at (`base`): what a crash leaves beyond it was never acknowledged.
 */
export function sidecarName(full: string, kind: "open" | "tmp", base?: number): string {
  const suffix = base === undefined ? "" : `.${base.toString(36)}`;
  return `${full}~${kind}-${SIDECAR_PREFIX}-${(sidecarCounter++).toString(36)}${suffix}`;
}

/**
 * getContent reads this much with its first read: link files (71 bytes) and most manifests fit,
 * so the usual read is open, one read, close (three thread-pool round trips; readFile takes four
 * or more).
 */
export const FIRST_READ = 4096;

/** Where a closed writer's bytes wait for `writer(path, true)`. */
export function closedWriterName(full: string): string {
  return `${full}~writer`;
}

/**
 * Makes a rename, link or unlink in `dir` durable. A directory that is gone was removed by a
 * delete that came after the change: nothing is left to make durable.
 */
export async function syncDirectory(dir: string): Promise<void> {
  let fd: number;
  try {
    fd = await fdOpen(dir, "r");
  } catch (error) {
    if (errorCode(error) === "ENOENT") return;
    throw error;
  }
  try {
    await fdSync(fd);
  } finally {
    await fdClose(fd);
  }
}

/** The stored entries of directory `full` (the driver's own files left out), sorted by name. */
export async function storedEntries(full: string): Promise<Dirent[]> {
  const entries = await readdir(full, { withFileTypes: true });
  // Stored names are ASCII, so comparing strings compares bytes.
  return entries
    .filter((entry) => STORED_NAME.test(entry.name) && (entry.isFile() || entry.isDirectory()))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * True when directory `full` holds a stored file at any depth: only then is it a directory of
 * the store. Stops at the first one found, which is usually the first entry read.
 */
export async function holdsStoredFiles(full: string): Promise<boolean> {
  try {
    for await (const entry of await opendir(full)) {
      if (!STORED_NAME.test(entry.name)) continue;
      if (entry.isFile()) return true;
      if (!entry.isDirectory()) continue;
      if (await holdsStoredFiles(join(full, entry.name))) return true;
    }
  } catch (error) {
    if (NOT_FOUND.has(errorCode(error) ?? "")) return false;
    throw error;
  }
  return false;
}

/** holdsStoredFiles for a directory whose stored entries have been read already. */
export async function anyStoredFile(full: string, entries: Dirent[]): Promise<boolean> {
  if (entries.some((entry) => !entry.isDirectory())) return true;
  for (const entry of entries) {
    if (await holdsStoredFiles(join(full, entry.name))) return true;
  }
  return false;
}

/** Removes file `full`; one that is not there is fine. */
export async function unlinkIfPresent(full: string): Promise<void> {
  await unlink(full).catch((error: unknown) => {
    if (!NOT_FOUND.has(errorCode(error) ?? "")) throw error;
  });
}

export async function isFile(full: string): Promise<boolean> {
  try {
    return (await lstat(full)).isFile();
  } catch (error) {
    if (NOT_FOUND.has(errorCode(error) ?? "")) return false;
    throw error;
  }
}
