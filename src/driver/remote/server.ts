// Over 400 lines: the server of every contract method, its streams sharing cancellation and errors.
// The server side of the protocol: any StorageDriver served on a Unix socket. Each call gets an
// AbortSignal that aborts when the client cancels it, so a caller's abort reaches the backend.

import { unlink } from "node:fs/promises";
import type { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { DriverBase } from "../base.js";
import { isValidPath } from "../paths.js";
import {
  InvalidPathError,
  PathNotFoundError,
  WriterClosedError,
  type CommitOptions,
  type FileWriter,
  type StorageDriver,
  type StoragePath,
} from "../driver.js";
import { Batch, MAX_CHUNK, SendWindow } from "./framing.js";
import {
  cancelledSignal,
  serveCalls,
  unary,
  unaryHandlers,
  type CallRequest,
  type Operations,
} from "./server-calls.js";
import {
  CHANNEL_OPTIONS,
  PROTOCOL_VERSION,
  driverService,
  toStatus,
  toWireInfo,
} from "./protocol.js";

/** Options of `serveDriver`. */
export interface ServeDriverOptions {
  /** The Unix socket to listen on (a stale file there is replaced). */
  socket: string;
  /** The protocol version to report; default PROTOCOL_VERSION (other values are for tests). */
  version?: string;
  /**
   * Answer LocalFile with the driver's files, and lend writers' files (local writes, 1.2), when it
   * has them (a driver with a `localFile` method and a root directory, such as the filesystem
   * driver). Default true; false when Berth runs elsewhere or must not open the driver's files.
   */
  localFiles?: boolean;
}

/** A driver whose content lies in local files below its root (FilesystemDriver). */
interface LocalFileDriver extends StorageDriver {
  localFile(path: StoragePath): Promise<string>;
  readonly rootDirectory?: string;
}

/** A writer appending to a local file that it can lend (FilesystemWriter): local writes. */
interface LendingWriter extends FileWriter {
  lendFile(): Promise<{ file: string; size: number }>;
  takeBackFile(size: number | undefined): Promise<void>;
}

/** The writer's lending side, when it has one (under DriverBase's measuring wrapper). */
function lendingOf(writer: FileWriter): LendingWriter | undefined {
  const inner = (writer as { inner?: FileWriter }).inner ?? writer;
  return typeof (inner as Partial<LendingWriter>).lendFile === "function"
    ? (inner as LendingWriter)
    : undefined;
}

function localFilesOf(driver: StorageDriver): LocalFileDriver | undefined {
  const inner = driver instanceof DriverBase ? driver.inner : driver;
  return typeof (inner as Partial<LocalFileDriver>).localFile === "function"
    ? (inner as LocalFileDriver)
    : undefined;
}

/** A driver being served; `close` stops the server (calls in flight are cancelled). */
export interface DriverServer {
  /** The socket it listens on. */
  readonly socket: string;
  close(): Promise<void>;
}

type Call = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

/** Fails a streaming call with `error`'s status (once; after a cancel nobody listens). */
function fail(call: Call | grpc.ServerDuplexStream<unknown, unknown>, error: unknown): void {
  if ((call as { cancelled?: boolean }).cancelled) return;
  call.emit("error", toStatus(error));
}

/** Writes `message`, waiting for "drain" when the call's buffer is full (the client's backpressure). */
async function send(
  call: grpc.ServerWritableStream<unknown, unknown>,
  message: unknown,
): Promise<void> {
  if (call.write(message)) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      resolve();
    };
    call.on("drain", done);
    call.on("cancelled", done);
  });
}

/** How long a partly filled batch of a reader waits for more content before it is sent. */
const FLUSH_DELAY_MS = 2;

/** Content a reader keeps sent but not yet handed to the socket (see SendWindow). */
const READER_WINDOW = 4 * MAX_CHUNK;

/**
 * Sends `stream`'s bytes as Chunks batched into messages of up to MAX_CHUNK: a batch goes out when
 * full, at the end, or when the content stops coming for FLUSH_DELAY_MS (a slow backend's bytes
 * are not held back).
 */
async function streamOut(
  call: grpc.ServerWritableStream<unknown, unknown>,
  stream: Readable,
  window: SendWindow,
  cancelled: Promise<void>,
): Promise<void> {
  const chunks = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let batch: Batch | undefined;
  const flush = async () => {
    if (batch === undefined || batch.size === 0) return;
    window.write(call, batch.message(), batch.size, batch);
    batch = undefined;
    if (window.full) await Promise.race([window.room(), cancelled]);
  };
  for (;;) {
    const next = chunks.next();
    let result: IteratorResult<Buffer> | "idle";
    if (batch === undefined) {
      result = await next;
    } else {
      let handle: NodeJS.Timeout | undefined;
      const idle = new Promise<"idle">((resolve) => {
        handle = setTimeout(() => resolve("idle"), FLUSH_DELAY_MS);
      });
      result = await Promise.race([next, idle]);
      clearTimeout(handle);
      if (result === "idle") {
        await flush();
        result = await next;
      }
    }
    if (result.done === true) break;
    const chunk = result.value;
    for (let at = 0; at < chunk.length;) {
      if ((call as { cancelled?: boolean }).cancelled) return;
      batch ??= new Batch(MAX_CHUNK);
      at += batch.add(at === 0 ? chunk : chunk.subarray(at));
      if (batch.room === 0) await flush();
    }
  }
  await flush();
}

interface WriterRequest {
  request?: "open" | "data" | "end" | "abort" | "local";
  open?: { path: string; append: boolean };
  data?: Buffer;
  end?: {
    action: "CLOSE" | "CANCEL" | "COMMIT" | "ACTION_UNSPECIFIED";
    local: boolean;
    size: number;
    movedNext?: boolean;
    commitTo?: string;
    ifAbsent?: boolean;
  };
}

/** How a writer ends, from a Writer call's `end` or the call stream's `write`. */
interface WriterEnding {
  action: string;
  /** 1.6: the commit need not sync the name (the content is moved next). */
  movedNext?: boolean;
  /** 1.7: commit at this path instead of the writer's own (commitTo); empty: at its own. */
  commitTo?: string;
  /** 1.8: with commitTo, only where no file is stored there (commitToIfAbsent). */
  ifAbsent?: boolean;
}

/** A commit's options from its end or write message (`moved_next`, 1.6). */
function commitOptions(end: WriterEnding): CommitOptions | undefined {
  return end.movedNext === true ? { movedNext: true } : undefined;
}

/**
 * Ends `writer` (at `path`) as `end` says. A commit with `commit_to` (1.7) is the driver's own
 * commitTo, or for a driver without one a commit and then a move in this process: either way one
 * call for Berth where a commit and a Move took two. With `if_absent` (1.8) it is the driver's
 * commitToIfAbsent, or a Stat in this process first: where a file is stored at `commit_to`, it
 * stays and the writer's content goes. True then (the reply's `kept`).
 */
async function endWriter(
  driver: DriverBase,
  writer: FileWriter,
  path: StoragePath,
  end: WriterEnding,
  signal: AbortSignal,
): Promise<boolean> {
  const destination = end.commitTo ?? "";
  if (destination !== "" && end.action !== "COMMIT") {
    throw new WriterClosedError(driver.name, path, `given commit_to with ${end.action}`);
  }
  if (end.ifAbsent === true && destination === "") {
    throw new WriterClosedError(driver.name, path, "given if_absent without commit_to");
  }
  if (end.action === "CLOSE") await writer.close();
  else if (end.action === "CANCEL") await writer.cancel();
  else if (end.action !== "COMMIT") {
    throw new WriterClosedError(driver.name, path, "given no end action");
  } else if (destination === "") await writer.commit(commitOptions(end));
  else if (end.ifAbsent === true) {
    return !(await commitIfAbsent(driver, writer, path, destination, signal));
  } else await commitTo(driver, writer, path, destination, signal);
  return false;
}

/** The commit of `commit_to`: the driver's commitTo, or a commit and then a move. */
async function commitTo(
  driver: DriverBase,
  writer: FileWriter,
  path: StoragePath,
  destination: StoragePath,
  signal: AbortSignal,
): Promise<void> {
  // DriverBase's writer checks the destination before its driver's commitTo runs.
  if (writer.commitTo !== undefined) return writer.commitTo(destination);
  // Refused before the writer ends, as commitTo does: nothing published, the writer still open.
  if (!isValidPath(destination)) throw new InvalidPathError(driver.name, destination);
  // The name need not be synced here: the move syncs its destination's.
  await writer.commit({ movedNext: true });
  await driver.move(path, destination, { signal });
}

/**
 * The commit of `commit_to` with `if_absent`: the driver's commitToIfAbsent, or, without one, a
 * Stat of `destination` first. False when a file was stored there (kept; the writer cancelled).
 */
async function commitIfAbsent(
  driver: DriverBase,
  writer: FileWriter,
  path: StoragePath,
  destination: StoragePath,
  signal: AbortSignal,
): Promise<boolean> {
  if (writer.commitToIfAbsent !== undefined) return writer.commitToIfAbsent(destination);
  if (!isValidPath(destination)) throw new InvalidPathError(driver.name, destination);
  const stored = await driver.stat(destination).then(
    (info) => !info.isDir,
    (error: unknown) => {
      if (error instanceof PathNotFoundError) return false;
      throw error;
    },
  );
  if (stored) {
    await writer.cancel();
    return false;
  }
  await commitTo(driver, writer, path, destination, signal);
  return true;
}

/**
 * One Writer call: open, data..., end, in that order, each processed before the next is read.
 * `lending`: whether writers may lend their files (local writes).
 */
async function serveWriter(
  driver: DriverBase,
  call: grpc.ServerDuplexStream<WriterRequest, unknown>,
  lending: boolean,
): Promise<void> {
  const controller = new AbortController();
  call.on("cancelled", () => controller.abort(new Error("the client cancelled the call")));
  let writer: FileWriter | undefined;
  let path = "";
  let ended = false;
  /** The writer whose file Berth may be writing (lent and not taken back). */
  let lent: LendingWriter | undefined;
  try {
    // Not destroyed when the loop ends early: the status must still be sent on it.
    const requests = (call as unknown as Readable).iterator({ destroyOnReturn: false });
    for await (const request of requests as AsyncIterable<WriterRequest>) {
      if (request.request === "open" && writer === undefined) {
        path = request.open!.path;
        writer = await driver.writer(path, request.open!.append, { signal: controller.signal });
        call.write({ opened: { size: writer.size } });
        continue;
      }
      if (writer === undefined) throw new WriterClosedError(driver.name, path, "not opened");
      if (request.request === "data") {
        // After an abort, data still on its way is dropped: the writer stays open for a close()
        // that keeps what it took (the client's write rejects, the size says what was kept).
        if (controller.signal.aborted) continue;
        // Data after a lend: Berth could not open the file and streams instead.
        if (lent !== undefined) {
          await lent.takeBackFile(undefined);
          lent = undefined;
        }
        await writer.write(request.data!);
      } else if (request.request === "local") {
        const lender = lending ? lendingOf(writer) : undefined;
        const offer =
          lender === undefined ? { file: "", size: writer.size } : await lender.lendFile();
        lent = lender;
        call.write({ local: offer });
      } else if (request.request === "abort") {
        controller.abort(new Error("the client aborted the writer"));
      } else if (request.request === "end") {
        const { action, local, size } = request.end!;
        if (local) {
          const borrowed = lent;
          if (borrowed === undefined)
            throw new WriterClosedError(driver.name, path, "lent no file");
          lent = undefined;
          await borrowed.takeBackFile(Number(size));
        } else if (lent !== undefined) {
          await lent.takeBackFile(undefined);
          lent = undefined;
        }
        const kept = await endWriter(
          driver,
          writer,
          path,
          { ...request.end!, action },
          controller.signal,
        );
        ended = true;
        call.write({ ended: { size: writer.size, kept } });
        call.end();
        return;
      }
    }
  } catch (error) {
    // Kept before the failure is told: the client may resume at once (after a refused commitTo).
    await keep();
    fail(call, error);
  } finally {
    await keep();
  }

  /**
   * The client went away (or the call failed) without ending the writer: keep what was written
   * (what Berth wrote to a lent file since is not known good: the file is cut to where it was lent).
   */
  async function keep(): Promise<void> {
    if (lent !== undefined) await lent.takeBackFile(undefined).catch(() => {});
    lent = undefined;
    if (!ended && writer !== undefined) await writer.close().catch(() => {});
    ended = true;
  }
}

/**
 * Serves `driver` over the protocol on `options.socket` until `close`. The driver is wrapped in
 * DriverBase (unless it is one) so that paths are checked and errors are the contract's.
 */
export async function serveDriver(
  driver: StorageDriver,
  options: ServeDriverOptions,
): Promise<DriverServer> {
  const served = driver instanceof DriverBase ? driver : new DriverBase(driver);
  const local = options.localFiles === false ? undefined : localFilesOf(driver);
  const server = new grpc.Server(CHANNEL_OPTIONS);
  type PathRequest = { path: string };
  type PutContentRequest = { path: string; content: Buffer; unsynced?: boolean };
  type WriteRequest = {
    path: string;
    append: boolean;
    content: Buffer;
    action: string;
    movedNext?: boolean;
    commitTo?: string;
    ifAbsent?: boolean;
  };
  const operations: Operations = {
    getContent: async ({ path }: PathRequest) => ({ content: await served.getContent(path) }),
    // Unsynced (1.6): the driver's putContentUnsynced, or DriverBase's putContent without one.
    putContent: async ({ path, content, unsynced }: PutContentRequest) => {
      await (unsynced === true
        ? served.putContentUnsynced(path, content)
        : served.putContent(path, content));
      return {};
    },
    putContentIfAbsent: async ({ path, content }: PutContentRequest) => ({
      stored: await served.putContentIfAbsent(path, content),
    }),
    stat: async ({ path }: PathRequest) => toWireInfo(await served.stat(path)),
    // The driver's own touch, or DriverBase's putContent of no bytes when it has none: either way
    // one call instead of the client's fallback.
    touch: async ({ path }: PathRequest) => {
      await served.touch(path);
      return {};
    },
    localFile: async ({ path }: PathRequest) => {
      // Stat first: it checks the path and answers NOT_FOUND as Stat does.
      const info = await served.stat(path);
      if (local === undefined || info.isDir) return { file: "", size: 0 };
      return { file: await local.localFile(path), size: info.size };
    },
    list: async ({ path }: PathRequest, signal) => ({
      paths: await served.list(path, { signal }),
    }),
    move: async (request: { sourcePath: string; destPath: string }, signal) => {
      await served.move(request.sourcePath, request.destPath, { signal });
      return {};
    },
    delete: async ({ path }: PathRequest, signal) => {
      await served.delete(path, { signal });
      return {};
    },
    write: async (request: WriteRequest, signal) => {
      const writer = await served.writer(request.path, request.append, { signal });
      let ended = false;
      try {
        if (request.content.length > 0) await writer.write(request.content);
        const kept = await endWriter(served, writer, request.path, request, signal);
        ended = true;
        return { size: writer.size, kept };
      } finally {
        // As a Writer call that ends early: what the writer took stays resumable.
        if (!ended) await writer.close().catch(() => {});
      }
    },
    redirectUrl: async (request: { path: string; method: string; expiresIn: number }) => ({
      url:
        (await served.redirectURL(request.path, {
          method: request.method === "HEAD" ? "HEAD" : "GET",
          ...(request.expiresIn > 0 ? { expiresIn: Number(request.expiresIn) } : {}),
        })) ?? "",
    }),
  };
  server.addService(driverService().service, {
    Version: unary(async () => ({
      version: options.version ?? PROTOCOL_VERSION,
      driver: served.name,
      localRoot: local?.rootDirectory ?? "",
    })),
    ...unaryHandlers(operations),
    Calls: (call: grpc.ServerDuplexStream<CallRequest, unknown>) =>
      serveCalls(served.name, operations, call),
    Reader: (call: grpc.ServerWritableStream<{ path: string; offset: number }, unknown>) => {
      const signal = cancelledSignal(call);
      void (async () => {
        let stream: Readable | undefined;
        try {
          stream = await served.reader(call.request.path, Number(call.request.offset), { signal });
          const cancelled = new Promise<void>((resolve) => call.once("cancelled", resolve));
          const window = new SendWindow(READER_WINDOW);
          // The first message, empty, says the content is open.
          window.write(call, { data: Buffer.alloc(0) }, 0);
          await streamOut(call, stream, window, cancelled);
          call.end();
        } catch (error) {
          fail(call, error);
        } finally {
          stream?.destroy();
        }
      })();
    },
    Writer: (call: grpc.ServerDuplexStream<WriterRequest, unknown>) => {
      void serveWriter(served, call, local?.rootDirectory !== undefined);
    },
    Walk: (call: grpc.ServerWritableStream<PathRequest, unknown>) => {
      const signal = cancelledSignal(call);
      served
        .walk(call.request.path, (info) => send(call, toWireInfo(info)), { signal })
        .then(
          () => call.end(),
          (error: unknown) => fail(call, error),
        );
    },
  });
  await unlink(options.socket).catch(() => {});
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${options.socket}`, grpc.ServerCredentials.createInsecure(), (error) =>
      error ? reject(error) : resolve(),
    );
  });
  return {
    socket: options.socket,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        // Streams a client keeps open would hold tryShutdown forever.
        setTimeout(() => server.forceShutdown(), 1000).unref();
      }),
  };
}
