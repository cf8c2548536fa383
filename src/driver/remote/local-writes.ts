// Berth's side of protocol 1.2's local writes: a driver whose writer appends to a file on this
// machine lends that file, and Berth appends to it directly (with the filesystem driver's own
// FileAppender) instead of sending the bytes through the protocol. Berth writes only the file a
// driver named for that writer, below the root the driver declared, reached without a symbolic
// link, and only a regular file of the size the driver said.

import { close, constants, fstat, open, readlink, realpath } from "node:fs";
import { basename, dirname, isAbsolute, join, normalize, sep } from "node:path";
import { promisify } from "node:util";

const fdOpen = promisify(open);
const fdStat = promisify(fstat);
const fdClose = promisify(close);
const readLink = promisify(readlink);
const realPath = promisify(realpath);

/**
 * Write-only, never following a symbolic link at the last component, never creating; and not
 * waiting (a FIFO named by a driver would block the open until someone reads it: with O_NONBLOCK
 * it fails at once, and anything but a regular file is refused after).
 */
const WRITE_NOFOLLOW = constants.O_WRONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The file a descriptor was opened on, as the kernel resolved it (Linux's /proc). */
async function openedFile(fd: number, file: string): Promise<string> {
  try {
    return await readLink(`/proc/self/fd/${fd}`);
  } catch {
    // Without /proc: the directory's real path (a race with a rename is then not excluded).
    return join(await realPath(dirname(file)), basename(file));
  }
}

/**
 * Opens the lent `file` for writing: a descriptor, or why it is refused. `root` is the driver's
 * declared local root; `size` the size the driver gave (and Berth expects).
 */
export async function openLentFile(
  root: string,
  file: string,
  size: number,
): Promise<{ fd: number } | { refused: string }> {
  const prefix = root.endsWith(sep) ? root : root + sep;
  if (!isAbsolute(file) || normalize(file) !== file || !file.startsWith(prefix)) {
    return { refused: `${file} is not below the driver's local root ${root}` };
  }
  let fd: number;
  try {
    fd = await fdOpen(file, WRITE_NOFOLLOW);
  } catch (error) {
    return { refused: `${file} cannot be opened: ${(error as Error).message}` };
  }
  let refused: string | undefined;
  try {
    const info = await fdStat(fd);
    const real = await openedFile(fd, file);
    if (!info.isFile()) refused = `${file} is not a regular file`;
    else if (info.size !== size) refused = `${file} holds ${info.size} bytes, not ${size}`;
    else if (real !== file) refused = `${file} leads to ${real} (a symbolic link)`;
  } catch (error) {
    refused = `${file} cannot be checked: ${(error as Error).message}`;
  }
  if (refused === undefined) return { fd };
  await fdClose(fd).catch(() => {});
  return { refused };
}

export { fdClose };
