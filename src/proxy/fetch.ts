// One upstream fetch of one blob, however many clients ask for it at once. The bytes go into an
// ordinary upload of the local repository (hashed as they pass) and, at the same time, to every
// client that joined before the first byte went out; clients that come later wait until the blob
// is committed and read it from storage. The last chunk is held back from the clients until the
// upload's digest and size check passed, so that no client ever gets a complete body of wrong
// bytes; a fetch that fails midway commits nothing (the upload is cancelled) and cuts the
// clients' responses short.

import { Readable, type Writable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { Digest, RepositoryBlobs } from "../storage/index.js";

/** A client's response being fed from the fetch. */
interface Subscriber {
  destination: Writable;
  resolve(): void;
  reject(error: unknown): void;
}

export class BlobFetch {
  /** Resolves once the blob is committed to local storage; rejects when the fetch failed. */
  readonly done: Promise<void>;
  /** Bytes received from upstream so far. */
  received = 0;
  private readonly subscribers = new Set<Subscriber>();
  private flowing = false;

  constructor(
    readonly digest: Digest,
    body: WebReadableStream<Uint8Array> | ReadableStream<Uint8Array>,
    readonly size: number | undefined,
    local: RepositoryBlobs,
    onBytes: (count: number) => void,
  ) {
    this.done = this.run(Readable.fromWeb(body as WebReadableStream<Uint8Array>), local, onBytes);
    // Failures reach whoever awaits done; an unobserved one must not crash the process.
    this.done.catch(() => {});
  }

  /**
   * Streams the whole blob to `destination` from this fetch, resolving when it has all of it (not
   * ending it). Undefined when bytes already went out: the caller then waits for `done` and reads
   * storage.
   */
  join(destination: Writable, signal?: AbortSignal): Promise<void> | undefined {
    if (this.flowing) return undefined;
    return new Promise<void>((resolve, reject) => {
      const subscriber: Subscriber = { destination, resolve, reject };
      this.subscribers.add(subscriber);
      const leave = (): void => {
        if (!this.subscribers.delete(subscriber)) return;
        const reason: unknown = signal?.reason;
        reject(reason instanceof Error ? reason : new Error("the client went away"));
      };
      signal?.addEventListener("abort", leave, { once: true });
      destination.once("close", leave);
    });
  }

  private async run(
    body: Readable,
    local: RepositoryBlobs,
    onBytes: (count: number) => void,
  ): Promise<void> {
    let held: Buffer | undefined;
    const fanOut = (chunk: Buffer): Promise<void> => this.fanOut(chunk);
    const count = (bytes: number): void => {
      this.received += bytes;
      onBytes(bytes);
    };
    async function* tee(): AsyncGenerator<Buffer> {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        count(chunk.length);
        if (held !== undefined) await fanOut(held);
        held = chunk;
        yield chunk;
      }
    }
    const upload = await local.startUpload();
    try {
      await upload.finish(this.digest, this.size, tee());
    } catch (error) {
      body.destroy();
      await upload.cancel().catch(() => {});
      this.fail(error);
      throw error;
    }
    if (held !== undefined) await fanOut(held);
    this.flowing = true;
    for (const subscriber of this.subscribers) subscriber.resolve();
    this.subscribers.clear();
  }

  /** Writes a chunk to every subscriber, waiting for those that ask to wait (backpressure). */
  private async fanOut(chunk: Buffer): Promise<void> {
    this.flowing = true;
    const waits: Promise<unknown>[] = [];
    for (const subscriber of this.subscribers) {
      const { destination } = subscriber;
      if (destination.destroyed) continue;
      if (!destination.write(chunk)) waits.push(drained(destination));
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  private fail(error: unknown): void {
    for (const subscriber of this.subscribers) subscriber.reject(error);
    this.subscribers.clear();
  }
}

/** Resolves when `destination` drains or closes (a client that left waits for nothing). */
function drained(destination: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      destination.off("drain", done);
      destination.off("close", done);
      resolve();
    };
    destination.on("drain", done);
    destination.on("close", done);
  });
}
