// The catalog: every repository name, sorted by the full name string, paginated by `n`/`last`.
//
// A repository is a directory under `repositories/` holding `_layers` (distribution's rule) or
// `_manifests`. Names have several components, and a plain depth-first walk does not visit them
// in string order: `a-b` sorts before `a/b` ('-' and '.' are below '/'), yet a walk finishes
// everything under `a` first. So each directory is read by listing, and its entries are visited
// in the order of their keys: a child `c` stands for the name `<prefix>c` (if it is a repository)
// and, separately, for the range of names starting `<prefix>c/`. Ranges wholly at or before `last`
// are never listed, and the traversal stops as soon as `n` names are found: a small page reads a
// few directories, not the tree.

import type { StorageDriver } from "../driver/index.js";
import { unlessNotFound } from "./blobstore.js";
import { baseName, isLayoutEntry, isRepositoryListing, paths } from "./paths.js";

/** The entries of `path` by name; empty when it has none. */
async function listNames(driver: StorageDriver, path: string): Promise<string[]> {
  return ((await unlessNotFound(driver.list(path))) ?? []).map(baseName);
}

/**
 * Repository names after `last` (exclusive), sorted, at most `n` (all when undefined), passed to
 * `found` in order; `found` returns false to stop early.
 */
export async function eachRepository(
  driver: StorageDriver,
  found: (name: string) => boolean | void,
  last?: string,
): Promise<void> {
  const root = paths.repositoriesRoot();
  await visit(driver, root, "", await listNames(driver, root), found, last);
}

/** Visits the children of directory `path` (names `prefix<child>`); false once stopped. */
async function visit(
  driver: StorageDriver,
  path: string,
  prefix: string,
  children: string[],
  found: (name: string) => boolean | void,
  last: string | undefined,
): Promise<boolean> {
  type Entry = { key: string; child: string; range: boolean };
  const entries: Entry[] = [];
  for (const child of children) {
    if (isLayoutEntry(child)) continue;
    entries.push({ key: `${prefix}${child}`, child, range: false });
    entries.push({ key: `${prefix}${child}/`, child, range: true });
  }
  entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  const listings = new Map<string, Promise<string[]>>();
  const listing = (child: string): Promise<string[]> => {
    let names = listings.get(child);
    if (names === undefined) {
      names = listNames(driver, `${path}/${child}`);
      listings.set(child, names);
    }
    return names;
  };

  for (const { key, child, range } of entries) {
    if (!range) {
      if (last !== undefined && key <= last) continue;
      if (isRepositoryListing(await listing(child)) && found(key) === false) return false;
      continue;
    }
    // Every name in the range `key...` is at or before `last`: nothing to read there.
    if (last !== undefined && last > key && !last.startsWith(key)) continue;
    const names = await listing(child);
    if (!(await visit(driver, `${path}/${child}`, key, names, found, last))) return false;
  }
  return true;
}

/** Up to `n` repository names after `last` for which `include` holds (all by default), sorted. */
export async function catalog(
  driver: StorageDriver,
  n?: number,
  last?: string,
  include?: (name: string) => boolean,
): Promise<string[]> {
  const names: string[] = [];
  if (n !== undefined && n <= 0) return names;
  await eachRepository(
    driver,
    (name) => {
      if (include !== undefined && !include(name)) return true;
      names.push(name);
      return n === undefined || names.length < n;
    },
    last,
  );
  return names;
}
