// A walk built from `list` and `stat`, for drivers whose backend has real directories. Drivers with
// a flat key space (object stores) should list once without a delimiter instead.

import type { FileInfo, StorageDriver, StoragePath, WalkFn } from "./driver.js";
import { comparePaths } from "./paths.js";

/**
 * Walks the tree below `path` in lexical order using `driver.list` and `driver.stat`, calling `fn`
 * for each descendant, honouring "skip" and "stop".
 */
export async function walkByListing(
  driver: Pick<StorageDriver, "list" | "stat">,
  path: StoragePath,
  fn: WalkFn,
): Promise<void> {
  await walkDirectory(driver, path, fn);
}

/** Walks the children of `path`; resolves true when the callback said "stop". */
async function walkDirectory(
  driver: Pick<StorageDriver, "list" | "stat">,
  path: StoragePath,
  fn: WalkFn,
): Promise<boolean> {
  const children = (await driver.list(path)).sort(comparePaths);
  for (const child of children) {
    let info: FileInfo;
    try {
      info = await driver.stat(child);
    } catch (error) {
      // Removed between list and stat: a concurrent delete is not the walker's failure.
      if ((error as { code?: string }).code === "ERR_DRIVER_PATH_NOT_FOUND") continue;
      throw error;
    }
    const action = await fn(info);
    if (action === "stop") return true;
    if (action === "skip") {
      if (info.isDir) continue;
      return false;
    }
    if (info.isDir && (await walkDirectory(driver, child, fn))) return true;
  }
  return false;
}

/**
 * Walks a flat list of file infos (as an object store lists them without a delimiter) and reports
 * the directories implied by their paths too, in the order `walkByListing` would: depth first, the
 * children of a directory in lexical order. An object store lists keys in plain byte order, where
 * `/a/b-x` comes before `/a/b/c`; to give the contract's order the listing is gathered and sorted
 * component-wise first, so memory grows with the number of files below `root` (about 200 bytes
 * each). `files` must hold only files strictly below `root`.
 */
export async function walkFlatListing(
  root: StoragePath,
  files: AsyncIterable<FileInfo> | Iterable<FileInfo>,
  fn: WalkFn,
): Promise<void> {
  const all: FileInfo[] = [];
  for await (const file of files) all.push(file);
  const key = (path: string) => path.replaceAll("/", "\0");
  all.sort((a, b) => comparePaths(key(a.path), key(b.path)));

  const base = root === "/" ? "" : root;
  const reported = new Set<string>();
  let skipPrefix: string | undefined;
  for (const file of all) {
    if (skipPrefix !== undefined && file.path.startsWith(skipPrefix)) continue;
    skipPrefix = undefined;
    const components = file.path.slice(base.length + 1).split("/");
    let dir = base;
    let skipped = false;
    for (let i = 0; i < components.length - 1; i++) {
      dir = `${dir}/${components[i]}`;
      if (reported.has(dir)) continue;
      reported.add(dir);
      const action = await fn({ path: dir, size: 0, modTime: file.modTime, isDir: true });
      if (action === "stop") return;
      if (action === "skip") {
        skipPrefix = `${dir}/`;
        skipped = true;
        break;
      }
    }
    if (skipped) continue;
    const action = await fn(file);
    if (action === "stop") return;
    if (action === "skip") skipPrefix = `${dir}/`;
  }
}
