// The filesystem driver's copyTo: a range of a file into a Writable with recycled buffers.

import type { FileHandle } from "node:fs/promises";
import type { Writable } from "node:stream";
import type { ClosedError } from "../copy.js";

/**
 * copyTo reads into buffers of this size and keeps at most COPY_BUFFERS of them in flight per copy
 * (8 MiB): a buffer is read into again only after the destination's write callback says it is
 * done with it. Recycling them, rather than the fresh 64 KiB buffer a read stream allocates per
 * read, is what keeps the garbage collector out of a large pull (measured: server CPU per GiB
 * served 1.1 → 0.55 s). 2 MiB rather than 1 MiB halves the reads and socket writes per GiB
 * (measured: pull 1 GiB 2130–2150 → 2790–2850 MB/s; 4 MiB buffers gained nothing more).
 */
const COPY_BUFFER_SIZE = 2 * 1024 * 1024;
const COPY_BUFFERS = 4;
/** Buffers kept between copies, shared by all of them; beyond this, spare ones are dropped. */
const SPARE_COPY_BUFFERS = 4;
const spareCopyBuffers: Buffer[] = [];

/**
 * Writes bytes [start, end) of `handle` to `destination` with recycled buffers. Rejects when the
 * destination errors or closes first; a read in flight then still completes before it returns,
 * so the caller may close the handle at once.
 */
export async function copyRange(
  handle: FileHandle,
  destination: Writable,
  start: number,
  end: number,
  closed: ClosedError,
  aborted?: { signal: AbortSignal; error: () => Error },
): Promise<void> {
  let position = start;
  let writing = 0;
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const settled = () => {
    const resume = wake;
    wake = undefined;
    resume?.();
  };
  const onError = (error: Error) => {
    failure ??= closed(error);
    settled();
  };
  const onClose = () => {
    failure ??= closed();
    settled();
  };
  // Waits for a write callback or a failure, whichever comes first.
  const nextEvent = () => new Promise<void>((resolve) => (wake = resolve));
  const onAbort = () => {
    failure ??= aborted!.error();
    settled();
  };
  destination.on("error", onError);
  destination.on("close", onClose);
  aborted?.signal.addEventListener("abort", onAbort, { once: true });
  try {
    while (position < end) {
      if (aborted?.signal.aborted) failure ??= aborted.error();
      if (destination.destroyed) failure ??= closed();
      if (failure !== undefined) throw failure;
      if (writing >= COPY_BUFFERS) {
        await nextEvent();
        continue;
      }
      const buffer = spareCopyBuffers.pop() ?? Buffer.allocUnsafeSlow(COPY_BUFFER_SIZE);
      const wanted = Math.min(COPY_BUFFER_SIZE, end - position);
      const { bytesRead } = await handle.read(buffer, 0, wanted, position);
      if (bytesRead === 0) throw new Error(`file ended at ${position}, before ${end}`);
      position += bytesRead;
      if (failure !== undefined || destination.destroyed) continue;
      writing++;
      destination.write(buffer.subarray(0, bytesRead), (error) => {
        writing--;
        // A buffer whose write failed may still be referenced by the destination: not reused.
        if (error) failure ??= closed(error);
        else if (spareCopyBuffers.length < SPARE_COPY_BUFFERS) spareCopyBuffers.push(buffer);
        settled();
      });
    }
    while (writing > 0 && failure === undefined) await nextEvent();
    if (failure !== undefined) throw failure;
  } finally {
    destination.off("error", onError);
    destination.off("close", onClose);
    aborted?.signal.removeEventListener("abort", onAbort);
  }
}
