// Over 400 lines: the client of every contract method, and the reader and writer streams with
// their deadlines, which share the connection and the error mapping.
//
// The client side of the protocol: a StorageDriver whose every call goes to a driver served
// elsewhere (a child process, see process.ts). Calls have a deadline, aborts cancel the call, and
// a transport failure (the process died) becomes a BackendError that says so.

import { open, type FileHandle } from "node:fs/promises";
import { Readable, type Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { copyByReader, copyRange } from "../copy.js";
import {
  AbortedError,
  BackendError,
  DestinationClosedError,
  StorageDriverError,
  UnsupportedMethodError,
  type CallOptions,
  type CommitOptions,
  type FileInfo,
  type FileWriter,
  type RedirectOptions,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
} from "../driver.js";
import { READ_NOFOLLOW } from "../filesystem/index.js";
import { WriterState } from "../writer-state.js";
import { FileAppender } from "../append.js";
import { Batch, MAX_CHUNK, SendWindow } from "./framing.js";
import { fdClose, openLentFile } from "./local-writes.js";
import { CallStream, CallStreamUnsupported, CallTimedOut } from "./calls.js";
import {
  SmallWriter,
  endWriter,
  type EndAction,
  type EndOptions,
  type WholeWrite,
} from "./small-writer.js";
import {
  CALL_KINDS,
  CHANNEL_OPTIONS,
  driverService,
  fromStatus,
  fromWireInfo,
  type CallKind,
  type WireFileInfo,
} from "./protocol.js";

/** Content a writer keeps sent but not yet handed to the socket (see SendWindow). */
const WRITER_WINDOW = 4 * MAX_CHUNK;

/** The smallest batch a writer gathers in (its first MAX_CHUNK goes in batches this large). */
const SMALL_BATCH = 64 * 1024;

/** Content up to this size goes on the call stream; larger content through the unary rpcs. */
const STREAM_CONTENT = 256 * 1024;

const EMPTY = new Uint8Array(0);

/** A gRPC client of the StorageDriver service (methods as generated from the .proto). */
export type ServiceClient = grpc.Client & Record<RpcName, (...args: unknown[]) => unknown>;

/** The rpcs of the service (proto/berth-driver.proto). */
export type RpcName =
  | "Version"
  | "GetContent"
  | "PutContent"
  | "PutContentIfAbsent"
  | "Reader"
  | "Writer"
  | "Stat"
  | "List"
  | "Move"
  | "Delete"
  | "RedirectURL"
  | "Walk"
  | "LocalFile"
  | "Touch"
  | "Calls";

/** A client of the driver served on the Unix socket `socket`. */
export function connectClient(socket: string): ServiceClient {
  const Service = driverService();
  return new Service(
    `unix:${socket}`,
    grpc.credentials.createInsecure(),
    CHANNEL_OPTIONS,
  ) as unknown as ServiceClient;
}

/** Where a RemoteDriver's calls go: the current client, and why it may have been lost. */
export interface DriverConnection {
  /** The client to call now; waits (bounded) while the driver process (re)starts. */
  client(): Promise<ServiceClient>;
  /**
   * Says why a call failed at the transport level (the process died, is restarting), waiting
   * briefly for the process's exit to be known.
   */
  explain(failure: grpc.ServiceError): Promise<string>;
  /** Stops the driver process; later calls fail. */
  close(): Promise<void>;
  /** The pid of the running process, if one runs. */
  readonly pid: number | undefined;
  /** How many times the process was started again after dying. */
  readonly restartCount: number;
  /**
   * The directory below which the running driver's writers lend their files (protocol 1.2's
   * local writes); undefined when they do not (or the driver's protocol predates them).
   */
  readonly localRoot?: string | undefined;
  /** Whether the running driver serves the call stream (protocol 1.3's `Calls`). */
  readonly callStream?: boolean;
  /** Whether the running driver serves `Touch` (protocol 1.4). */
  readonly touch?: boolean;
  /** Whether the running driver reads batches on the call stream (protocol 1.5). */
  readonly callBatches?: boolean;
  /** Whether the running driver's writers commit to another path (protocol 1.7's `commit_to`). */
  readonly commitTo?: boolean;
  /** Whether they commit unless a file is stored there (protocol 1.8's `if_absent`). */
  readonly commitToIfAbsent?: boolean;
}

/** Statuses that come from the transport, not from the driver (when the driver sent no code). */
const TRANSPORT = new Set<grpc.status>([
  grpc.status.UNAVAILABLE,
  grpc.status.INTERNAL,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.CANCELLED,
  grpc.status.UNKNOWN,
  grpc.status.RESOURCE_EXHAUSTED,
]);

function isServiceError(error: unknown): error is grpc.ServiceError {
  return error instanceof Error && typeof (error as { code?: unknown }).code === "number";
}

/** Rejects with `make()` after `ms`, unless cleared. */
function timer(ms: number, make: () => Error): { promise: Promise<never>; clear(): void } {
  let handle: NodeJS.Timeout | undefined;
  const promise = new Promise<never>((_, reject) => {
    handle = setTimeout(() => reject(make()), ms);
  });
  promise.catch(() => {});
  return { promise, clear: () => clearTimeout(handle) };
}

/** A driver proxied over the protocol. `name` is the name Berth knows it by. */
export class RemoteDriver implements StorageDriver {
  constructor(
    readonly name: string,
    private readonly connection: DriverConnection,
    /** Deadline of a unary call, and of each step of a stream (open, a write, an end). */
    readonly callTimeoutMs: number,
    /** Whether to use the call stream of a driver that serves one (protocol 1.3). */
    callStream = true,
  ) {
    this.callStreamOff = !callStream;
  }

  /** The contract error for a failed call. */
  async failure(method: string, path: string | undefined, error: unknown): Promise<Error> {
    if (!isServiceError(error)) {
      if ((error as { code?: unknown })?.code !== undefined) return error as Error;
      return new BackendError(this.name, method, path, { cause: error });
    }
    const coded = error.metadata?.get("berth-error-code").length > 0;
    if (!coded && error.code === grpc.status.DEADLINE_EXCEEDED) {
      return this.timedOut(method, path);
    }
    if (!coded && TRANSPORT.has(error.code)) {
      const cause = new Error(await this.connection.explain(error));
      return new BackendError(this.name, method, path, { cause });
    }
    return fromStatus(this.name, method, path, {
      status: error.code,
      details: error.details,
      metadata: error.metadata,
    });
  }

  timedOut(method: string, path: string | undefined): StorageDriverError {
    const cause = new Error(`the driver process did not answer within ${this.callTimeoutMs} ms`);
    return new BackendError(this.name, method, path, { cause });
  }

  /** The call stream of the running driver process, while it serves one (protocol 1.3). */
  private calls: CallStream | undefined;
  /** The driver said 1.3 but has no `Calls`: unary calls only. */
  private callStreamOff = false;

  /** The call stream to send a call on now, or undefined: unary (an older driver, or full). */
  private callStream(client: ServiceClient): CallStream | undefined {
    if (this.callStreamOff || this.connection.callStream !== true) return undefined;
    let calls = this.calls;
    if (calls === undefined || calls.client !== client || !calls.usable) {
      calls = this.calls = new CallStream(
        client,
        this.callTimeoutMs,
        this.connection.callBatches === true,
      );
    }
    return calls.full ? undefined : calls;
  }

  /**
   * `request` of `kind` on the call stream; undefined, having sent nothing, when no stream takes
   * it now (an older driver, or the stream is full): the caller then uses an rpc.
   */
  private async onCallStream<Reply>(
    client: ServiceClient,
    kind: CallKind,
    request: object,
    method: string,
    path: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<{ reply: Reply } | undefined> {
    const calls = this.callStream(client);
    if (calls === undefined) return undefined;
    try {
      return { reply: await this.streamed<Reply>(calls, kind, request, method, path, signal) };
    } catch (error) {
      if (error instanceof CallStreamUnsupported) {
        this.callStreamOff = true;
        return undefined;
      }
      throw await this.failure(method, path, error);
    }
  }

  /**
   * A unary call of `rpc`, cancelled by `signal`, with the call deadline: on the call stream when
   * the driver serves one (and the request's content is small), else as a unary rpc.
   */
  private async unary<Reply>(
    rpc: RpcName & keyof typeof CALL_KINDS,
    request: object,
    path: string | undefined,
    signal?: AbortSignal,
  ): Promise<Reply> {
    const client = await this.connection.client();
    const content = (request as { content?: Uint8Array }).content;
    if (content === undefined || content.length <= STREAM_CONTENT) {
      const kind = CALL_KINDS[rpc];
      const done = await this.onCallStream<Reply>(
        client,
        kind,
        request,
        methodOf(rpc),
        path,
        signal,
      );
      if (done !== undefined) return done.reply;
    }
    try {
      return await new Promise<Reply>((resolve, reject) => {
        const deadline = Date.now() + this.callTimeoutMs;
        const call = client[rpc](request, { deadline }, (error: Error | null, reply: Reply) =>
          error ? reject(error) : resolve(reply),
        ) as grpc.ClientUnaryCall;
        if (signal !== undefined) {
          const cancel = () => call.cancel();
          signal.addEventListener("abort", cancel, { once: true });
          call.on("status", () => signal.removeEventListener("abort", cancel));
        }
      });
    } catch (error) {
      throw await this.failure(methodOf(rpc), path, error);
    }
  }

  /** A call on the call stream, with the call deadline; an abort gives it up at once. */
  private streamed<Reply>(
    calls: CallStream,
    kind: CallKind,
    request: object,
    method: string,
    path: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<Reply> {
    if (signal?.aborted)
      return Promise.reject(new AbortedError(this.name, method, path, signal.reason));
    return new Promise<Reply>((resolve, reject) => {
      let abort: (() => void) | undefined;
      const id = calls.send(kind, request, (error, reply) => {
        if (abort !== undefined) signal!.removeEventListener("abort", abort);
        if (error === null) resolve(reply as Reply);
        else if (error instanceof CallTimedOut) reject(this.timedOut(method, path));
        else if (error instanceof Error) reject(error);
        else reject(fromStatus(this.name, method, path, error));
      });
      if (signal !== undefined) {
        abort = () => {
          calls.cancel(id);
          reject(new AbortedError(this.name, method, path, signal.reason));
        };
        signal.addEventListener("abort", abort, { once: true });
      }
    });
  }

  async getContent(path: StoragePath): Promise<Uint8Array> {
    const reply = await this.unary<{ content: Buffer }>("GetContent", { path }, path);
    return reply.content;
  }

  async putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    await this.unary("PutContent", { path, content }, path);
  }

  /**
   * PutContent marked `unsynced` (1.6): a driver of 1.6 or later stores it with its
   * putContentUnsynced (the filesystem: no fsync of the file or its directory), an older one
   * ignores the mark and stores durably.
   */
  async putContentUnsynced(path: StoragePath, content: Uint8Array): Promise<void> {
    await this.unary("PutContent", { path, content, unsynced: true }, path);
  }

  async putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    const reply = await this.unary<{ stored: boolean }>(
      "PutContentIfAbsent",
      { path, content },
      path,
    );
    return reply.stored;
  }

  /** The driver answered Touch with UNIMPLEMENTED: putContent of no bytes from then on. */
  private touchOff = false;

  /**
   * The driver's `Touch` (protocol 1.4): one call that, on the filesystem, opens the record with
   * O_TRUNC and syncs nothing. To an older driver, putContent of no bytes, as DriverBase does for
   * a driver without touch.
   */
  async touch(path: StoragePath): Promise<void> {
    if (!this.touchOff && this.connection.touch === true) {
      try {
        await this.unary("Touch", { path }, path);
        return;
      } catch (error) {
        if (!(error instanceof UnsupportedMethodError)) throw error;
        this.touchOff = true;
      }
    }
    await this.putContent(path, EMPTY);
  }

  async stat(path: StoragePath): Promise<FileInfo> {
    return fromWireInfo(await this.unary<WireFileInfo>("Stat", { path }, path));
  }

  async list(path: StoragePath, options?: CallOptions): Promise<StoragePath[]> {
    const reply = await this.unary<{ paths: string[] }>("List", { path }, path, options?.signal);
    return reply.paths;
  }

  async move(sourcePath: StoragePath, destPath: StoragePath, options?: CallOptions): Promise<void> {
    await this.unary("Move", { sourcePath, destPath }, sourcePath, options?.signal);
  }

  async delete(path: StoragePath, options?: CallOptions): Promise<void> {
    await this.unary("Delete", { path }, path, options?.signal);
  }

  async redirectURL(path: StoragePath, options?: RedirectOptions): Promise<string | null> {
    const reply = await this.unary<{ url: string }>(
      "RedirectURL",
      { path, method: options?.method ?? "GET", expiresIn: options?.expiresIn ?? 0 },
      path,
    );
    return reply.url === "" ? null : reply.url;
  }

  async reader(path: StoragePath, offset = 0, options?: CallOptions): Promise<Readable> {
    const client = await this.connection.client();
    const call = client.Reader({ path, offset }) as grpc.ClientReadableStream<{ data: Buffer }>;
    const signal = options?.signal;
    const cancel = () => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    call.on("status", () => signal?.removeEventListener("abort", cancel));
    let opened: (error?: Error) => void = () => {};
    const open = new Promise<void>((resolve, reject) => {
      opened = (error) => (error === undefined ? resolve() : reject(error));
    });
    const stream = this.byteStream(call, path, opened);
    // Wait for the first message: the content is open (or the call failed).
    const limit = timer(this.callTimeoutMs, () => this.timedOut("reader", path));
    try {
      await Promise.race([limit.promise, open]);
    } catch (error) {
      call.cancel();
      stream.destroy();
      throw await this.failure("reader", path, error);
    } finally {
      limit.clear();
    }
    return stream;
  }

  /**
   * The bytes of a Reader call as a Readable: pauses the call when the reader falls behind.
   * `opened` is called at the first message, or with the error the call fails with first.
   */
  private byteStream(
    call: grpc.ClientReadableStream<{ data: Buffer }>,
    path: string,
    opened: (error?: Error) => void,
  ): Readable {
    let done = false;
    let first = true;
    const stream = new Readable({
      highWaterMark: MAX_CHUNK,
      read: () => call.resume(),
      destroy: (error, callback) => {
        if (!done) call.cancel();
        callback(error);
      },
    });
    call.on("data", (message: { data: Buffer }) => {
      if (first) {
        first = false;
        opened();
      }
      if (message.data.length > 0 && !stream.push(message.data)) call.pause();
    });
    // The content is whole only when the call ends with OK: gRPC also ends the message stream
    // of a call that failed (before its "error"), which must not look like the end of content.
    // And it ends only once every message was passed on: gRPC reports the status as soon as the
    // last message arrived, while messages may still wait in the call when it is paused.
    let ok = false;
    let ended = false;
    const finish = () => {
      if (!ok || !ended || done) return;
      done = true;
      opened();
      stream.push(null);
    };
    call.on("status", (status: grpc.StatusObject) => {
      if (status.code !== grpc.status.OK) return;
      ok = true;
      finish();
    });
    call.on("end", () => {
      ended = true;
      finish();
    });
    call.on("error", (error: Error) => {
      done = true;
      if (first) {
        first = false;
        opened(error);
        return;
      }
      if (stream.destroyed) return;
      void this.failure("reader", path, error).then((failure) => stream.destroy(failure));
    });
    return stream;
  }

  /**
   * The content's local file when the driver gives one (protocol 1.1's LocalFile) and this
   * process can open it: copied from there as the filesystem driver copies (no bytes through the
   * protocol). Otherwise streamed through Reader.
   */
  async copyTo(
    path: StoragePath,
    destination: Writable,
    offset: number,
    length?: number,
    options?: CallOptions,
  ): Promise<void> {
    if (this.localFiles) {
      const local = await this.localFile(path, options?.signal);
      if (local !== undefined) {
        const copied = await this.copyLocal(local, path, destination, offset, length, options);
        if (copied) return;
      }
    }
    await copyByReader(this, path, destination, offset, length, options?.signal);
  }

  /** Whether to ask for local files: until the driver says it has none it could give. */
  private localFiles = true;

  private async localFile(
    path: StoragePath,
    signal: AbortSignal | undefined,
  ): Promise<{ file: string; size: number } | undefined> {
    try {
      const reply = await this.unary<{ file: string; size: number }>(
        "LocalFile",
        { path },
        path,
        signal,
      );
      return reply.file === "" ? undefined : { file: reply.file, size: Number(reply.size) };
    } catch (error) {
      // A driver of protocol 1.0 does not know the call.
      if (error instanceof UnsupportedMethodError) {
        this.localFiles = false;
        return undefined;
      }
      throw error;
    }
  }

  /** Copies from the local file; false (nothing written) when it cannot be opened as given. */
  private async copyLocal(
    local: { file: string; size: number },
    path: StoragePath,
    destination: Writable,
    offset: number,
    length: number | undefined,
    options: CallOptions | undefined,
  ): Promise<boolean> {
    let handle: FileHandle;
    try {
      handle = await open(local.file, READ_NOFOLLOW);
    } catch (error) {
      // Not allowed to (another user's files): stream from now on. Gone (deleted or replaced
      // since): Reader says what is there now.
      const code = (error as { code?: unknown }).code;
      if (code === "EACCES" || code === "EPERM") this.localFiles = false;
      return false;
    }
    const signal = options?.signal;
    try {
      const info = await handle.stat();
      if (!info.isFile() || info.size !== local.size) return false;
      const end = length === undefined ? info.size : Math.min(info.size, offset + length);
      await copyRange(
        handle,
        destination,
        offset,
        end,
        (cause) => new DestinationClosedError(this.name, path, cause),
        signal && {
          signal,
          error: () => new AbortedError(this.name, "copyTo", path, signal.reason),
        },
      );
      return true;
    } catch (error) {
      if (error instanceof StorageDriverError) throw error;
      throw new BackendError(this.name, "copyTo", path, { cause: error });
    } finally {
      await handle.close();
    }
  }

  /**
   * A writer: to a driver that serves the call stream, one that holds its content until it ends
   * or grows (see small-writer.ts), asking first for the size to resume from when `append`;
   * otherwise one on a Writer rpc of its own.
   */
  async writer(path: StoragePath, append: boolean, options?: CallOptions): Promise<FileWriter> {
    if (!this.callStreamOff && this.connection.callStream === true) {
      const base = append ? (await this.writeWhole(path, true, EMPTY, "CLOSE", "writer")).size : 0;
      // Still served (the stream may have turned out to be missing meanwhile).
      if (!this.callStreamOff) {
        const { commitsTo, commitsIfAbsent } = this;
        return new SmallWriter(
          this,
          path,
          append,
          base,
          options?.signal,
          commitsTo,
          commitsIfAbsent,
        );
      }
    }
    return this.streamWriter(path, append, options?.signal);
  }

  /** A writer on a Writer rpc of its own. */
  async streamWriter(
    path: StoragePath,
    append: boolean,
    signal?: AbortSignal,
  ): Promise<FileWriter> {
    const client = await this.connection.client();
    const call = client.Writer() as grpc.ClientDuplexStream<unknown, WriterReply>;
    const writer = new RemoteWriter(this, call, path, this.commitsTo, this.commitsIfAbsent);
    try {
      await writer.open(append);
    } catch (error) {
      call.cancel();
      throw error;
    }
    if (signal !== undefined) {
      const abort = () => writer.abort();
      signal.addEventListener("abort", abort, { once: true });
      call.on("status", () => signal.removeEventListener("abort", abort));
    }
    return writer;
  }

  /**
   * Whether writers commit to another path (protocol 1.7): they then offer commitTo, sent as a
   * commit's `commit_to`, and an upload's last chunk goes into `blobs/` in the call that commits it.
   */
  get commitsTo(): boolean {
    return this.connection.commitTo === true;
  }

  /**
   * Whether writers commit unless a file is stored there (protocol 1.8): they then offer
   * commitToIfAbsent, sent as a commit's `if_absent`, so that an upload's last chunk goes into
   * `blobs/` without a Stat first.
   */
  get commitsIfAbsent(): boolean {
    return this.connection.commitToIfAbsent === true;
  }

  /**
   * A whole writer in one `write` call on the call stream (opened, given `content`, ended with
   * `action`), or on a Writer rpc when no stream takes it; resolves with its final size, and with
   * whether a file stored at the destination was kept (`if_absent`).
   */
  async writeWhole(
    path: StoragePath,
    append: boolean,
    content: Uint8Array,
    action: EndAction,
    method = `writer.${action.toLowerCase()}`,
    options?: EndOptions,
  ): Promise<WholeWrite> {
    const client = await this.connection.client();
    const request = {
      path,
      append,
      content,
      action,
      movedNext: options?.movedNext === true,
      commitTo: options?.commitTo ?? "",
      ifAbsent: options?.ifAbsent === true,
    };
    const done = await this.onCallStream<{ size: number; kept?: boolean }>(
      client,
      "write",
      request,
      method,
      path,
      undefined,
    );
    if (done !== undefined)
      return { size: Number(done.reply.size), kept: done.reply.kept === true };
    const writer = await this.streamWriter(path, append);
    if (content.length > 0) await writer.write(content);
    const kept = await endWriter(writer, action, options);
    return { size: writer.size, kept };
  }

  async walk(path: StoragePath, fn: WalkFn, options?: CallOptions): Promise<void> {
    const client = await this.connection.client();
    const call = client.Walk({ path }) as grpc.ClientReadableStream<WireFileInfo>;
    const signal = options?.signal;
    const cancel = () => call.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    // The walk streams everything; "skip" is applied here, "stop" cancels the call.
    let skipPrefix: string | undefined;
    let stopped = false;
    // gRPC ends the message stream of a failed call too: the walk is whole only with an OK status.
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    try {
      for await (const wire of call as AsyncIterable<WireFileInfo>) {
        const info = fromWireInfo(wire);
        if (skipPrefix !== undefined && info.path.startsWith(skipPrefix)) continue;
        skipPrefix = undefined;
        const action = await fn(info);
        if (action === "stop") {
          stopped = true;
          call.cancel();
          return;
        }
        if (action === "skip") {
          skipPrefix = info.isDir
            ? `${info.path}/`
            : `${info.path.slice(0, info.path.lastIndexOf("/"))}/`;
        }
      }
      const { code, details, metadata } = await status;
      if (code !== grpc.status.OK) {
        throw Object.assign(new Error(details), { code, details, metadata });
      }
    } catch (error) {
      if (stopped) return;
      throw await this.failure("walk", path, error);
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  }

  /** The pid of the driver process while one runs (for tests and logs). */
  get pid(): number | undefined {
    return this.connection.pid;
  }

  /** How many times the driver process was restarted after dying. */
  get restartCount(): number {
    return this.connection.restartCount;
  }

  /** Why the last lent file was refused (local writes then stop for this driver), if one was. */
  localWritesRefused: string | undefined;

  /** The root below which the driver lends writers' files, while Berth writes them itself. */
  get localRoot(): string | undefined {
    return this.localWritesRefused === undefined ? this.connection.localRoot : undefined;
  }

  /** Stops the driver process (see DriverConnection.close). */
  close(): Promise<void> {
    return this.connection.close();
  }
}

function methodOf(rpc: RpcName): string {
  if (rpc === "RedirectURL") return "redirectURL";
  return rpc[0]!.toLowerCase() + rpc.slice(1);
}

interface WriterReply {
  reply?: "opened" | "ended" | "local";
  opened?: { size: number };
  ended?: { size: number; kept?: boolean };
  local?: { file: string; size: number };
}

/** A FileWriter whose writes go to a Writer call; see the .proto for the exchange. */
class RemoteWriter implements FileWriter {
  private readonly state: WriterState;
  private written = 0;
  /** The call's failure, once it failed: every later call rejects with it. */
  private failed: Promise<never> | undefined;
  private readonly replies: WriterReply[] = [];
  private waiting: ((reply: WriterReply | Error) => void) | undefined;
  /** Rejects when the call fails: a write in flight then never calls back. */
  private readonly broken: Promise<never>;
  /** The caller's signal aborted: writes stop sending and reject. */
  private aborted = false;
  /** Content taken by write() and not yet sent. */
  private batch: Batch | undefined;
  /** The `opened` reply is still to come (see open). */
  private openPending = false;
  /** Bytes of content sent so far. */
  private sent = 0;
  /** The size the writer was opened at. */
  private base = 0;
  /** Appends to the driver's lent file, once Berth writes it itself (local writes). */
  private local: FileAppender | undefined;
  /** Whether the lent file's descriptor is still to be closed. */
  private localOpen = false;
  /** Whether the driver was asked to lend its file. */
  private localAsked = false;
  private readonly window = new SendWindow(WRITER_WINDOW);

  constructor(
    private readonly driver: RemoteDriver,
    private readonly call: grpc.ClientDuplexStream<unknown, WriterReply>,
    private readonly path: string,
    /** Whether the driver commits to another path (protocol 1.7): commitTo is offered. */
    commitsTo: boolean,
    /** Whether it commits unless a file is stored there (1.8): commitToIfAbsent is offered. */
    commitsIfAbsent = false,
  ) {
    this.state = new WriterState(driver.name, path);
    if (commitsTo) {
      this.commitTo = async (destination) => {
        await this.end("COMMIT", "writer.commitTo", { commitTo: destination });
      };
    }
    if (commitsTo && commitsIfAbsent) {
      this.commitToIfAbsent = async (destination) =>
        !(await this.end("COMMIT", "writer.commitToIfAbsent", {
          commitTo: destination,
          ifAbsent: true,
        }));
    }
    call.on("data", (reply: WriterReply) => {
      if (this.waiting !== undefined) this.waiting(reply);
      else this.replies.push(reply);
    });
    let broke: (error: unknown) => void = () => {};
    this.broken = new Promise<never>((_, reject) => (broke = reject));
    this.broken.catch(() => {});
    call.on("error", (error: Error) => {
      this.failed ??= driver.failure("writer", path, error).then((failure) => {
        throw failure;
      });
      this.failed.catch(() => {});
      broke(error);
      this.waiting?.(error);
    });
  }

  /** Offered only when the driver has it (see the constructor): else commit and move. */
  readonly commitTo?: (path: StoragePath) => Promise<void>;

  /** Offered only when the driver has it (see the constructor): else a Stat first. */
  readonly commitToIfAbsent?: (path: StoragePath) => Promise<boolean>;

  get size(): number {
    return this.written;
  }

  /** The next reply, or the call's failure, within the call timeout. */
  private async reply(what: string): Promise<WriterReply> {
    const queued = this.replies.shift();
    if (queued !== undefined) return queued;
    if (this.failed !== undefined) return this.failed;
    const limit = timer(this.driver.callTimeoutMs, () => this.driver.timedOut(what, this.path));
    try {
      const reply = await Promise.race([
        limit.promise,
        new Promise<WriterReply | Error>((resolve) => (this.waiting = resolve)),
      ]);
      if (reply instanceof Error) return await this.failed!;
      return reply;
    } finally {
      this.waiting = undefined;
      limit.clear();
    }
  }

  /**
   * Sends `message` (`bytes` of content); resolves at once while the writer's window has room,
   * else once the transport took enough (HTTP/2 flow control: backpressure).
   */
  private async send(message: object, what: string, bytes = 0, batch?: Batch): Promise<void> {
    if (this.failed !== undefined) return this.failed;
    this.window.write(this.call, message, bytes, batch);
    if (!this.window.full) return;
    const limit = timer(this.driver.callTimeoutMs, () => this.driver.timedOut(what, this.path));
    try {
      await Promise.race([limit.promise, this.window.room(), this.broken]);
    } catch (error) {
      if (this.failed !== undefined) return this.failed;
      this.call.cancel();
      throw await this.driver.failure(what, this.path, error);
    } finally {
      limit.clear();
    }
  }

  /** Sends the batch being gathered, if any. */
  private async flush(what: string): Promise<void> {
    const batch = this.batch;
    if (batch === undefined || batch.size === 0) return;
    this.batch = undefined;
    await this.send(batch.message(), what, batch.size, batch);
  }

  /**
   * Opens the writer. A new one (not `append`) starts at size 0, so its `opened` reply is not
   * waited for: writes follow the open at once, and a failed open fails the next call (the
   * small push saves a round trip). A resumed one needs the size the reply gives.
   */
  async open(append: boolean): Promise<void> {
    await this.send({ open: { path: this.path, append } }, "writer");
    if (!append) {
      this.openPending = true;
      return;
    }
    const reply = await this.reply("writer");
    this.written = this.base = Number(reply.opened?.size ?? 0);
  }

  /**
   * Asks the driver to lend the writer's file (local writes) and opens it; streams on when the
   * driver has none or the file is refused (local writes then stop for this driver).
   */
  private async borrow(root: string): Promise<void> {
    this.localAsked = true;
    await this.send({ local: {} }, "writer.write");
    if (this.openPending) {
      await this.reply("writer.write");
      this.openPending = false;
    }
    const offer = (await this.reply("writer.write")).local;
    if (offer === undefined || offer.file === "") return;
    const size = this.base + this.sent;
    const opened =
      Number(offer.size) === size
        ? await openLentFile(root, offer.file, size)
        : { refused: `the driver lent ${offer.file} at ${offer.size} bytes, not ${size}` };
    if ("refused" in opened) {
      this.driver.localWritesRefused = opened.refused;
      return;
    }
    this.local = new FileAppender(opened.fd, size);
    this.localOpen = true;
  }

  /** Appends `chunk` to the lent file. */
  private async writeLocal(chunk: Uint8Array): Promise<void> {
    if (this.aborted) throw new AbortedError(this.driver.name, "writer.write", this.path);
    try {
      await this.local!.write(chunk);
    } catch (error) {
      throw new BackendError(this.driver.name, "writer.write", this.path, { cause: error });
    }
  }

  /**
   * Copies `chunk` into the batch being gathered (the caller may reuse it once this resolves),
   * sending each full batch: a writer's content travels in messages of MAX_CHUNK, whatever the
   * size of its chunks. The first MAX_CHUNK of a writer go in smaller batches, so that a small
   * blob does not cost a MAX_CHUNK buffer.
   */
  write(chunk: Uint8Array): Promise<void> {
    return this.state.run(async () => {
      if (this.failed !== undefined) return this.failed;
      if (this.local !== undefined) {
        await this.writeLocal(chunk);
        this.written += chunk.length;
        return;
      }
      for (let at = 0; at < chunk.length;) {
        if (this.aborted) break;
        this.batch ??= new Batch(
          this.sent >= MAX_CHUNK
            ? MAX_CHUNK
            : Math.min(MAX_CHUNK, Math.max(SMALL_BATCH, chunk.length - at)),
        );
        at += this.batch.add(at === 0 ? chunk : chunk.subarray(at));
        if (this.batch.room === 0) {
          this.sent += this.batch.size;
          await this.flush("writer.write");
          // Past its first MAX_CHUNK, a writer asks for the driver's file: a large push is then
          // written as in process, and a small one pays no extra round trip.
          const root = this.driver.localRoot;
          if (this.sent >= MAX_CHUNK && !this.localAsked && root !== undefined) {
            await this.borrow(root);
            if (this.local !== undefined) {
              if (at < chunk.length) await this.writeLocal(chunk.subarray(at));
              break;
            }
          }
        }
      }
      // The server drops data that reaches it after the abort: how much it kept, close() says.
      if (this.aborted) throw new AbortedError(this.driver.name, "writer.write", this.path);
      this.written += chunk.length;
    });
  }

  /** Aborts the writer's signal on the server (write and commit fail there too). */
  abort(): void {
    this.aborted = true;
    if (this.failed !== undefined) return;
    // What write() already took goes first: the server keeps what reached it before the abort.
    const batch = this.batch;
    this.batch = undefined;
    if (batch !== undefined && batch.size > 0) {
      this.window.write(this.call, batch.message(), 0, batch);
    }
    this.window.write(this.call, { abort: {} }, 0);
  }

  /**
   * `options`: a commit's CommitOptions.movedNext (sent as `moved_next`, 1.6), commitTo's
   * destination (`commit_to`, 1.7) and commitToIfAbsent's `if_absent` (1.8). True when a file
   * stored at the destination was kept (the reply's `kept`).
   */
  private end(action: EndAction, method: string, options?: EndOptions): Promise<boolean> {
    const ending = action === "CLOSE" ? "closed" : action === "CANCEL" ? "cancelled" : "committed";
    const commit = {
      movedNext: options?.movedNext === true,
      commitTo: options?.commitTo ?? "",
      ifAbsent: options?.ifAbsent === true,
    };
    return this.state.run(async () => {
      if (this.local !== undefined) return this.endLocal(action, method, commit);
      // Cancel drops what is still gathered; close and commit keep it.
      if (action === "CANCEL") this.batch = undefined;
      await this.flush(method);
      await this.send({ end: { action, ...commit } }, method);
      if (this.openPending) {
        await this.reply(method);
        this.openPending = false;
      }
      const reply = await this.reply(method);
      this.written = Number(reply.ended?.size ?? this.written);
      this.call.end();
      return reply.ended?.kept === true;
    }, ending);
  }

  /**
   * Ends a writer whose file Berth wrote: finishes the writes, closes the file, and tells the
   * driver the size it wrote. A commit after a failed write closes instead (the bytes before the
   * failure stay resumable, nothing is published) and rejects, as a close after one does.
   */
  private async endLocal(
    action: EndAction,
    method: string,
    commit: { movedNext: boolean; commitTo: string; ifAbsent: boolean },
  ): Promise<boolean> {
    const appender = this.local!;
    let failure: unknown;
    if (this.localOpen) {
      await appender.finish(action !== "CANCEL").catch((error: unknown) => (failure = error));
      this.localOpen = false;
      await fdClose(appender.fd).catch((error: unknown) => (failure ??= error));
    }
    failure ??= appender.failed;
    const size = appender.failedAt ?? appender.written;
    if (failure !== undefined && action === "COMMIT") {
      await this.send({ end: { action: "CLOSE", local: true, size } }, method);
    } else {
      await this.send({ end: { action, local: true, size, ...commit } }, method);
    }
    const reply = await this.reply(method);
    this.written = Number(reply.ended?.size ?? size);
    this.call.end();
    if (failure !== undefined && action !== "CANCEL") {
      throw new BackendError(this.driver.name, method, this.path, { cause: failure });
    }
    return reply.ended?.kept === true;
  }

  async close(): Promise<void> {
    await this.end("CLOSE", "writer.close");
  }

  async cancel(): Promise<void> {
    await this.end("CANCEL", "writer.cancel");
  }

  async commit(options?: CommitOptions): Promise<void> {
    await this.end("COMMIT", "writer.commit", options);
  }
}
