// What the bench reports about the machine it ran on: cores, memory, Node, the temporary
// directory's disk, and for ext4 whether that disk has a journal.

import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { basename } from "node:path";

export function machine(): Record<string, unknown> {
  const cores = cpus();
  let disk = "unknown";
  try {
    disk =
      execFileSync("df", ["-T", "-h", tmpdir()], { encoding: "utf8" }).trim().split("\n")[1] ??
      disk;
  } catch {
    // df missing: the disk stays unknown.
  }
  const journal = ext4Journal(disk);
  return {
    cores: cores.length,
    cpu: cores[0]?.model,
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    tmpdir: tmpdir(),
    disk: disk.replace(/\s+/g, " "),
    ...(journal === undefined ? {} : { ext4Journal: journal }),
  };
}

/**
 * For an ext4 file system (a line of `df -T`), whether it has a journal: jbd2 lists each journaled
 * device in `jbd2` (/proc/fs/jbd2) as `<device>-<n>`. Without one, ext4 skips inodes deleted in
 * the last minutes when it allocates, so runs soon after another run's clean-up push small blobs
 * slower (docs/performance.md, "Small pushes from cold, and the file system's inode allocator").
 * Undefined when the line is not ext4 on a device, or jbd2's directory cannot be read.
 */
export function ext4Journal(df: string, jbd2 = "/proc/fs/jbd2"): boolean | undefined {
  const [device, type] = df.trim().split(/\s+/);
  if (type !== "ext4" || device === undefined || !device.startsWith("/dev/")) return undefined;
  const name = basename(device);
  try {
    return readdirSync(jbd2).some((entry) => entry.startsWith(`${name}-`));
  } catch (error) {
    // No jbd2 at all: no ext4 here has a journal.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    return undefined;
  }
}
