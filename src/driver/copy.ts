// Copying stored content into a Writable: the driver's own `copyTo` where it has one, otherwise its
// `reader`, so that callers (DriverBase, the storage layer) need not care which a driver offers.
// Also copyRange, a range of a local file with recycled buffers: the filesystem driver's copyTo,
// and Berth's copy from the local file of an out-of-process driver (driver/remote).

import type { FileHandle } from "node:fs/promises";
import type { Readable, Writable } from "node:stream";
import {
  AbortedError,
  DestinationClosedError,
  type CallOptions,
  type StorageDriver,
  type StoragePath,
} from "./driver.js";

/** Makes the DestinationClosedError of one copy, with the destination's error as its cause. */
export type ClosedError = (cause?: unknown) => DestinationClosedError;

/**
 * Writes `length` bytes (all when undefined) of the content at `path` from `offset` to
 * `destination`, with the semantics of StorageDriver.copyTo: through the driver's `copyTo` when
 * it has one, else through its `reader`. Does not check the path or offset (DriverBase does).
 */
export function copyContent(
  driver: StorageDriver,
  path: StoragePath,
  destination: Writable,
  offset: number,
  length?: number,
  options?: CallOptions,
): Promise<void> {
  if (driver.copyTo !== undefined) {
    return driver.copyTo(path, destination, offset, length, options);
  }
  return copyByReader(driver, path, destination, offset, length, options?.signal);
}

/** copyContent through the driver's `reader`, for a driver whose own copyTo cannot serve a path. */
export async function copyByReader(
  driver: StorageDriver,
  path: StoragePath,
  destination: Writable,
  offset: number,
  length: number | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const source = await driver.reader(path, offset, { signal });
  await copyStream(driver.name, path, source, destination, length, signal);
}

/**
 * Writes `length` bytes (all when undefined) of `source`, a reader of the content at `path`, to
 * `destination`, as copyTo does (see StorageDriver.copyTo); destroys `source` when done. Aborting
 * `signal` destroys `source` with AbortedError, also while the copy waits for its next chunk.
 *
 * The chunks are taken as the source emits them ("data" events, the source paused only while the
 * destination needs a drain), not through the stream's async iterator: that calls `read()`, which
 * joins everything queued into one fresh buffer, a copy of every byte (measured on a 1 GiB pull
 * from s3 through the registry: 11% of the server's CPU samples in that join, plus the collector
 * and page faults of its up-to-1-MiB buffers).
 *
 * The source is paused only once the destination holds WRITE_AHEAD_BYTES not yet written, not at
 * its own high-water mark: see there.
 */
export function copyStream(
  driverName: string,
  path: StoragePath,
  source: Readable,
  destination: Writable,
  length: number | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  const closed: ClosedError = (cause) => new DestinationClosedError(driverName, path, cause);
  const aborted = () => new AbortedError(driverName, "copyTo", path, signal?.reason);
  let remaining = length ?? Number.POSITIVE_INFINITY;
  return new Promise<void>((resolve, reject) => {
    // The copy is done when the destination has taken every byte (its write callbacks ran), as
    // with a driver's own copyTo, not merely when the last write was queued in its buffer.
    let lastWrite: Promise<void> = Promise.resolve();
    /** All bytes were read: only the last write is still awaited. */
    let reading = true;
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      reading = false;
      signal?.removeEventListener("abort", onAbort);
      source.off("data", onData);
      source.off("end", onEnd);
      source.off("error", settle);
      source.off("close", onSourceClose);
      destination.off("drain", onDrain);
      // Also stops a source read only in part (a range), which frees its file or connection.
      // Its own later "error" (from the destroy) has a listener: the copy has settled.
      source.on("error", () => undefined);
      source.destroy();
      // A destination destroyed but not yet closed has its "error" and "close" still to emit (on
      // the next tick): the listeners stay until then.
      const detach = () => {
        destination.off("error", onDestinationError);
        destination.off("close", onDestinationClose);
      };
      if (destination.destroyed && !destination.closed) destination.once("close", detach);
      else detach();
      if (error === undefined) resolve();
      else reject(error);
    };
    const onAbort = () => settle(aborted());
    // The destination is watched for the whole copy, not only while a write or a drain is
    // awaited: it may fail while the copy waits for the source (a network stream), and an "error"
    // it emits with no listener would be an uncaught exception instead of this copy's rejection.
    const onDestinationError = (error: Error) => settle(closed(error));
    const onDestinationClose = () => settle(closed());
    const onDrain = () => {
      if (reading) source.resume();
    };
    const finish = () => {
      reading = false;
      source.off("data", onData);
      // What the source does after its last byte needed is no longer this copy's concern.
      source.off("error", settle);
      source.on("error", () => undefined);
      whileOpen(destination, lastWrite, closed).then(
        // An abort during the last write still rejects: the caller gave up on this copy.
        () => settle(signal?.aborted ? aborted() : undefined),
        settle,
      );
    };
    const onEnd = () => {
      if (reading) finish();
    };
    const onSourceClose = () => {
      if (reading) settle(new Error(`the reader of ${path} closed before its end`));
    };
    const onData = (chunk: Buffer) => {
      if (!reading) return;
      if (destination.destroyed) return settle(closed());
      const part = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk;
      remaining -= part.length;
      lastWrite = written(destination, part, closed);
      // Only the last write is awaited; an earlier one that fails also errors the destination.
      lastWrite.catch(() => undefined);
      if (remaining === 0) return finish();
      if (destination.writableNeedDrain && destination.writableLength >= WRITE_AHEAD_BYTES) {
        source.pause();
        destination.once("drain", onDrain);
      }
    };
    destination.on("error", onDestinationError);
    destination.on("close", onDestinationClose);
    if (remaining === 0) return settle();
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    source.on("error", settle);
    source.on("end", onEnd);
    source.on("close", onSourceClose);
    source.on("data", onData);
  });
}

/**
 * Bytes a copy leaves queued in its destination before it pauses the source. A socket's mark is
 * 16 KiB, so at that mark every 64 KiB chunk of a network source paused the source and resumed it
 * on the next "drain" (16.4 thousand times per GiB pulled from s3), and each chunk went to the
 * kernel in a write of its own. With a bound of 1 MiB the source pauses ~600 times per GiB, and
 * the chunks that queue while a socket write is pending leave in one writev.
 */
export const WRITE_AHEAD_BYTES = 1024 * 1024;

/** Writes `chunk`; resolves when the destination has taken it, rejects when it fails first. */
function written(destination: Writable, chunk: Buffer, closed: ClosedError): Promise<void> {
  return new Promise((resolve, reject) => {
    destination.write(chunk, (error) => (error ? reject(closed(error)) : resolve()));
  });
}

/**
 * Settles as `promise` does, or rejects when `destination` errors or closes first: a destination
 * destroyed while it writes may never call that write's callback.
 */
function whileOpen(
  destination: Writable,
  promise: Promise<void>,
  closed: ClosedError,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (error?: Error) => {
      destination.off("error", onError);
      destination.off("close", onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onError = (error: Error) => settle(closed(error));
    const onClose = () => settle(closed());
    destination.on("error", onError);
    destination.on("close", onClose);
    promise.then(() => settle(), settle);
    // Its "close" may have been emitted already.
    if (destination.destroyed) onClose();
  });
}

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
/**
 * Buffers in flight for all copies together beyond each copy's first (6 MiB): many concurrent
 * pulls share them, so memory stays bounded and every copy always has one. One pull alone still
 * gets its COPY_BUFFERS. With 32, skopeo's pull of 5 layers held 40 MiB of them (RSS 116-126 MiB
 * at its peak); zb-style pulls at 50 in flight held 50 × 4 × 2 MiB before any bound.
 */
export const SHARED_COPY_BUFFERS = 3;
let sharedInFlight = 0;
/**
 * Copies whose own buffer is of COPY_BUFFER_SIZE, at most (16 MiB); a copy that starts a read while
 * this many hold one reads into SMALL_COPY_BUFFER_SIZE instead. With one full-size buffer each,
 * the zb mix at 50 in flight (38 pulls of 10 MiB) held 76 MiB of them, RSS 212 MiB at its peak on
 * a loaded machine; now at most 16 + 6 MiB of full-size ones and 256 KiB for each copy beyond.
 */
export const FULL_SIZE_OWN_BUFFERS = 8;
const SMALL_COPY_BUFFER_SIZE = 256 * 1024;
let fullSizeOwnInFlight = 0;
/** Buffers kept between copies, shared by all of them; beyond this, spare ones are dropped. */
const SPARE_COPY_BUFFERS = 4;
const spareCopyBuffers: Buffer[] = [];
/** The same for the small ones (4 MiB). */
const SPARE_SMALL_COPY_BUFFERS = 16;
const spareSmallCopyBuffers: Buffer[] = [];
/** When (performance.now()) a copy buffer was last taken or given back. */
let copyBuffersLastUsed = Number.NEGATIVE_INFINITY;

/** When (performance.now()) a copy last took or gave back a buffer; -Infinity: never. */
export function copyBuffersLastUsedAt(): number {
  return copyBuffersLastUsed;
}

/**
 * Lets go of the spare copy buffers (an idle server's memory, or the pulls' once a push took over:
 * ./spares.ts; the next copy allocates anew); returns their bytes.
 */
export function dropSpareCopyBuffers(): number {
  let bytes = 0;
  for (const buffer of spareCopyBuffers.splice(0)) bytes += buffer.length;
  for (const buffer of spareSmallCopyBuffers.splice(0)) bytes += buffer.length;
  return bytes;
}

/**
 * A buffer of `size` (COPY_BUFFER_SIZE or SMALL_COPY_BUFFER_SIZE) for `wanted` more bytes: a spare
 * one, or a new one, of exactly `wanted` when less (a 4 KiB blob is not read through a fresh 2 MiB
 * buffer; such a buffer is not kept as a spare).
 */
function copyBuffer(size: number, wanted: number): Buffer {
  copyBuffersLastUsed = performance.now();
  const spares = size === COPY_BUFFER_SIZE ? spareCopyBuffers : spareSmallCopyBuffers;
  return spares.pop() ?? Buffer.allocUnsafeSlow(Math.min(size, wanted));
}

/** Keeps a buffer whose write is done for the next copy, when it is of a kept size. */
function giveBackCopyBuffer(buffer: Buffer): void {
  copyBuffersLastUsed = performance.now();
  if (buffer.length === COPY_BUFFER_SIZE) {
    if (spareCopyBuffers.length < SPARE_COPY_BUFFERS) spareCopyBuffers.push(buffer);
  } else if (buffer.length === SMALL_COPY_BUFFER_SIZE) {
    if (spareSmallCopyBuffers.length < SPARE_SMALL_COPY_BUFFERS) spareSmallCopyBuffers.push(buffer);
  }
}

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
      // A copy's first buffer is its own; more only while the shared ones last.
      if (writing >= COPY_BUFFERS || (writing > 0 && sharedInFlight >= SHARED_COPY_BUFFERS)) {
        await nextEvent();
        continue;
      }
      // A shared buffer is taken before the read: other copies check the counts while it runs.
      const shared = writing > 0;
      // An own buffer is full-size while fewer than FULL_SIZE_OWN_BUFFERS copies hold one.
      const fullSizeOwn = !shared && fullSizeOwnInFlight < FULL_SIZE_OWN_BUFFERS;
      if (shared) sharedInFlight++;
      if (fullSizeOwn) fullSizeOwnInFlight++;
      const release = () => {
        if (shared) sharedInFlight--;
        if (fullSizeOwn) fullSizeOwnInFlight--;
      };
      let handedOver = false;
      try {
        const size = shared || fullSizeOwn ? COPY_BUFFER_SIZE : SMALL_COPY_BUFFER_SIZE;
        const buffer = copyBuffer(size, end - position);
        const wanted = Math.min(buffer.length, end - position);
        const { bytesRead } = await handle.read(buffer, 0, wanted, position);
        if (bytesRead === 0) throw new Error(`file ended at ${position}, before ${end}`);
        position += bytesRead;
        if (failure !== undefined || destination.destroyed) continue;
        writing++;
        handedOver = true;
        destination.write(buffer.subarray(0, bytesRead), (error) => {
          writing--;
          release();
          // A buffer whose write failed may still be referenced by the destination: not reused.
          if (error) failure ??= closed(error);
          else giveBackCopyBuffer(buffer);
          settled();
        });
      } finally {
        if (!handedOver) release();
      }
    }
    while (writing > 0 && failure === undefined) await nextEvent();
    if (failure !== undefined) throw failure;
  } finally {
    destination.off("error", onError);
    destination.off("close", onClose);
    aborted?.signal.removeEventListener("abort", onAbort);
  }
}
