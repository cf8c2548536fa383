// Path rules of the driver contract (see StoragePath in driver.ts), checked once in the base
// wrapper so that no driver repeats them.

/**
 * Components of [A-Za-z0-9._-]+, each after a `/`, none `.` or `..` (the lookahead). One test
 * per call, no split: every driver call checks its path, twice on the filesystem (the base
 * wrapper and the driver); 2.1 µs a path with a split, 0.14-0.28 µs this way (1000 link paths).
 */
const PATH_PATTERN = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._-]+)+$/;

/** True when `path` is a valid object path: absolute, components of [A-Za-z0-9._-]+, no . or .. */
export function isValidPath(path: string): boolean {
  return typeof path === "string" && PATH_PATTERN.test(path);
}

/** True for a valid object path or the root `/` (which `list`, `stat` and `walk` accept). */
export function isValidPathOrRoot(path: string): boolean {
  return path === "/" || isValidPath(path);
}

/** The parent directory of a valid path; `/` for a top-level path. */
export function parentPath(path: string): string {
  const index = path.lastIndexOf("/");
  return index <= 0 ? "/" : path.slice(0, index);
}

/** `child` joined under directory `dir` (which may be `/`). */
export function joinPath(dir: string, child: string): string {
  return dir === "/" ? `/${child}` : `${dir}/${child}`;
}

/** True when `path` is `dir` itself or lies below it (`/a` contains `/a/b`, not `/ab`). */
export function isWithin(dir: string, path: string): boolean {
  if (dir === "/") return true;
  return path === dir || path.startsWith(`${dir}/`);
}

/** Byte-wise lexical comparison of two paths, the order `walk` reports in. */
export function comparePaths(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
