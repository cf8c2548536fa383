// Over 400 lines: the whole contract in one file, as its documentation for driver authors.
//
// The storage driver contract. Everything in Berth that stores bytes goes through a StorageDriver:
// the registry storage layer above knows digests and repositories, a driver knows only paths and
// bytes. This file is the whole contract; each method documents what it must do, including for
// missing paths and out-of-range offsets. Drivers are checked against it by the shared test suite in
// ./testsuite, which every driver (in-tree or third-party) runs.

import type { Readable, Writable } from "node:stream";

/**
 * Paths: absolute, `/`-separated, each component matching `[A-Za-z0-9._-]+`. Components `.` and
 * `..`, empty components (`//`) and a trailing slash are invalid. The root `/` is valid only for
 * `list`, `stat` and `walk`. The base wrapper enforces this before any driver code runs, so drivers
 * never check paths themselves.
 */
export type StoragePath = string;

/** What `stat`, `walk` and friends report about one path. */
export interface FileInfo {
  /** The path this describes, as asked for (or, in `walk`, as found). */
  readonly path: StoragePath;
  /** Size in bytes of a file; 0 for a directory. */
  readonly size: number;
  /** Last modification time. For a directory, a backend without directory times may give any time. */
  readonly modTime: Date;
  /** True when the path is only a prefix of other paths (a directory), not an object itself. */
  readonly isDir: boolean;
}

/**
 * A writer for one path, obtained from `StorageDriver.writer`. Bytes written are not visible at the
 * path until `commit()` resolves (a backend may show partial content earlier, but never bytes that
 * were not written). Exactly one of `close`, `cancel` or `commit` ends a writer; after that every
 * method rejects.
 *
 * Backpressure: `write` resolves once the chunk has been accepted; callers await it before writing
 * the next chunk, so a writer holds a bounded amount of data in memory.
 */
export interface FileWriter {
  /** Appends `chunk`. The writer may keep a reference to `chunk` until the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes written so far, including those of earlier sessions when resumed with `append: true`. */
  readonly size: number;
  /**
   * Keeps what was written without publishing it: a later `writer(path, true)` resumes from here,
   * also from another process. Only `commit` promises durability: after a machine crash a resumed
   * writer may hold less than was closed (its `size` says how much), never other bytes.
   */
  close(): Promise<void>;
  /** Discards everything written (in this and earlier sessions); nothing is left at the path. */
  cancel(): Promise<void>;
  /**
   * Publishes the whole content at the path. It replaces what was there before. Durable once it
   * resolves, unless `options.movedNext`: see CommitOptions.
   */
  commit(options?: CommitOptions): Promise<void>;
  /**
   * Optional: `commit`, but the whole content is published at `path` instead of the writer's own
   * path (replacing what is there, making its directories), durable once it resolves. Nothing is
   * left at the writer's path (as after `cancel`); a directory that leaves empty may remain, absent
   * to `stat` and `list` as any directory without content. An upload's data goes straight into
   * `blobs/` this way: on a filesystem one rename, where commit then `move` take two, a lookup of
   * the source and an attempt to remove its directory. It fails as commit does (an aborted call
   * published nothing). Drivers without it are used through commit and `move`.
   */
  commitTo?(path: StoragePath): Promise<void>;
  /**
   * Optional: `commitTo`, unless a file is stored at `path` already. Then nothing is published,
   * the writer's content is discarded (as by `cancel`) and it resolves false; what is stored stays
   * as it was. A blob's upload uses it: on a filesystem, the mkdir of a new blob's directory says
   * nothing is there, where a lookup first took a call more. Drivers without it are used through
   * `stat` and `commitTo`.
   */
  commitToIfAbsent?(path: StoragePath): Promise<boolean>;
}

/** Options of FileWriter.commit. */
export interface CommitOptions {
  /**
   * The caller moves the content to another path right after (an upload's data into `blobs/`):
   * the bytes must still be durable when commit resolves, but the name at this path need not be
   * (a filesystem then skips syncing the directory), since the move makes the destination's name
   * durable. A crash before the move may leave no content at this path; never other content.
   */
  movedNext?: boolean;
}

/**
 * Options of the contract's long operations (reader, copyTo, writer, list, move, delete, walk).
 * `signal` cancels the call, as distribution's drivers take a context: once it aborts, the call
 * rejects with AbortedError and the driver stops the backend work it started (requests in flight
 * are aborted, streams destroyed, file handles closed). What each method does on an abort is
 * stated at the method. DriverBase checks the signal before any driver code runs and between
 * the steps it sees (walk's callbacks, a writer's calls), so a driver that ignores it is still
 * cancelled there, only later.
 */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Options of `writer`. */
export interface WriterOptions extends CallOptions {
  /**
   * With `append: true`: when nothing was ever written at the path's directory (it is not there),
   * start an empty writer instead of failing with PathNotFoundError, in one call where a failed
   * resume then `writer(path, false)` take two. An upload's first bytes use it. A driver may
   * ignore it: the caller then gets PathNotFoundError, as without it.
   */
  newIfMissing?: boolean;
  /**
   * With `newIfMissing`: where the writer's bytes will most likely be committed (commitTo,
   * commitToIfAbsent). A driver may keep the bytes of a writer that starts new there until it ends,
   * so that publishing moves them least. In every other way the writer is `path`'s: close keeps
   * its bytes resumable by `writer(path, true)`, cancel discards them, and a crash before either
   * takes only bytes nobody acknowledged. Drivers may ignore it.
   */
  stageNear?: StoragePath;
}

/** Told of one request a driver sent to its backend: the backend's name of the operation. */
export type BackendRequestObserver = (operation: string) => void;

/** What `walk`'s callback may return to steer the walk. */
export type WalkAction = "continue" | "skip" | "stop";

/**
 * Called for each path found by `walk`. Returning `"skip"` for a directory does not descend into
 * it (for a file, it skips the rest of that file's directory); `"stop"` ends the walk at once.
 * Anything else (including `undefined`) continues.
 */
export type WalkFn = (info: FileInfo) => WalkAction | void | Promise<WalkAction | void>;

/** Options for `redirectURL`. */
export interface RedirectOptions {
  /** The HTTP method the URL is for. Default "GET". */
  method?: "GET" | "HEAD";
  /** How long the URL stays valid, in seconds. Default: the driver's own (typically 20 minutes). */
  expiresIn?: number;
}

/**
 * A storage driver: the bytes of a registry, addressed by path. All methods are async. Every
 * method rejects with one of the error classes below (or an Error naming the operation and path for
 * a backend failure).
 */
export interface StorageDriver {
  /** The name the driver is registered under, such as "filesystem". */
  readonly name: string;

  /** The whole content at `path`, for small objects. PathNotFoundError if there is none. */
  getContent(path: StoragePath): Promise<Uint8Array>;

  /**
   * Stores `content` at `path`, replacing what was there, atomically: a concurrent reader sees
   * the old or the new content, never a mix. Directories are created as needed.
   */
  putContent(path: StoragePath, content: Uint8Array): Promise<void>;

  /**
   * Optional. Stores `content` at `path` only if nothing is there, as one conditional write of the
   * backend (`O_EXCL`-like: a hard link on a filesystem, `If-None-Match: *` on S3, an `ifNoneMatch`
   * condition on Azure): of several concurrent callers exactly one gets `true`, the others `false`
   * and the content stays the winner's. Readers see no content or the whole content. Used for the
   * garbage collector's lease. A driver without it gets DriverBase's fallback (stat, then
   * putContent): correct when callers do not race, which the lease documents.
   */
  putContentIfAbsent?(path: StoragePath, content: Uint8Array): Promise<boolean>;

  /**
   * Optional. Leaves an empty object at `path` whose modTime is the backend's now, replacing
   * what was there without a moment where nothing is (directories are created as needed). Unlike
   * putContent it need not be durable: a crash of the machine that holds the data may undo it.
   * For records of which only the modTime counts and that a caller can do without after such a
   * crash: the garbage collector's refresh records (docs/gc.md, "Crashes"). A driver without it
   * gets DriverBase's fallback, putContent of no bytes.
   */
  touch?(path: StoragePath): Promise<void>;

  /**
   * Optional. Stores `content` at `path` atomically, as putContent does, but need not be durable:
   * a crash of the machine may leave the old content or nothing there (never a mix). For records
   * whose loss in such a crash a caller handles: an upload's `startedat` (without it the upload is
   * unknown and the client starts again; nothing it was told is stored depends on it). A driver
   * without it gets DriverBase's fallback, putContent.
   */
  putContentUnsynced?(path: StoragePath, content: Uint8Array): Promise<void>;

  /**
   * A stream of the content at `path` from byte `offset`. PathNotFoundError if there is no file;
   * InvalidOffsetError if `offset` is negative; an offset at or past the end gives an empty stream.
   * Aborting `options.signal` rejects the call or, once the stream is returned, destroys it with
   * AbortedError (closing its file or connection).
   */
  reader(path: StoragePath, offset?: number, options?: CallOptions): Promise<Readable>;

  /**
   * Optional: writes `length` bytes of the content at `path`, from byte `offset`, to
   * `destination` (all bytes from `offset` when `length` is undefined; fewer when the content ends
   * first). For a backend that can copy faster than its `reader` streams (the filesystem driver
   * reuses a few large buffers instead of allocating one per read). It respects `destination`'s
   * backpressure, does not end it, and resolves once every byte written has been accepted by it.
   * PathNotFoundError if there is no file; InvalidOffsetError if `offset` or `length` is negative.
   * When `destination` errors or closes before the copy is done, it rejects with
   * DestinationClosedError and releases what it holds open (files, connections); the caller then
   * destroys `destination`. Callers go through
   * DriverBase or `copyContent`, which fall back to `reader` for a driver without this method.
   * Aborting `options.signal` rejects with AbortedError (after a read in flight, never in the
   * middle of one), leaving `destination` open: the caller ends or destroys it.
   */
  copyTo?(
    path: StoragePath,
    destination: Writable,
    offset: number,
    length?: number,
    options?: CallOptions,
  ): Promise<void>;

  /**
   * A FileWriter for `path`. With `append: false` it starts empty (whatever an earlier writer
   * left). With `append: true` it resumes the content an earlier writer `close()`d, with `size` set
   * to the bytes written so far; PathNotFoundError if there is nothing to resume.
   * Once `options.signal` aborts, `write` and `commit` reject with AbortedError: an aborted writer
   * publishes nothing, and discards nothing either (content an earlier session closed stays
   * resumable); `close` and `cancel` still work, so that the caller decides what is kept.
   * `options.newIfMissing`: see WriterOptions.
   */
  writer(path: StoragePath, append: boolean, options?: WriterOptions): Promise<FileWriter>;

  /**
   * Facts about `path`. A path that is a prefix of stored objects is a directory. PathNotFoundError
   * if it is neither a file nor a directory. `/` is always a directory.
   */
  stat(path: StoragePath): Promise<FileInfo>;

  /**
   * The full paths of the direct children of directory `path`, in no particular order. A file
   * lists as empty; PathNotFoundError when nothing is stored at or below `path` (except `/`,
   * which lists as empty). A directory whose last file was deleted or moved away is gone.
   * Aborting `options.signal` rejects with AbortedError and stops listing.
   */
  list(path: StoragePath, options?: CallOptions): Promise<StoragePath[]>;

  /**
   * Moves the file at `sourcePath` to `destPath`, replacing anything there and creating
   * directories as needed; atomic where the backend allows. PathNotFoundError if the source is
   * absent. Aborting `options.signal` rejects with AbortedError; the move may then have happened
   * or not (never half: the destination holds the old or the moved content).
   */
  move(sourcePath: StoragePath, destPath: StoragePath, options?: CallOptions): Promise<void>;

  /**
   * Deletes `path` and, for a directory, everything below it. Deleting `/a` never touches `/ab`.
   * PathNotFoundError if nothing is there. Aborting `options.signal` rejects with AbortedError and
   * stops deleting: part of a tree may be gone, each file is either whole or gone.
   */
  delete(path: StoragePath, options?: CallOptions): Promise<void>;

  /**
   * A URL a client may fetch the content at `path` from directly (such as a presigned URL), or
   * `null` when the backend cannot give one.
   */
  redirectURL(path: StoragePath, options?: RedirectOptions): Promise<string | null>;

  /**
   * Calls `fn` for every descendant of `path` (files and directories, not `path` itself), depth
   * first, the children of each directory in lexical order, a directory before its contents.
   * A file walks as empty. PathNotFoundError if `path` does not exist (the root `/` of an empty
   * store walks nothing). Returning "skip" for a file skips the rest of its directory.
   * Aborting `options.signal` rejects with AbortedError; `fn` is not called again.
   */
  walk(path: StoragePath, fn: WalkFn, options?: CallOptions): Promise<void>;

  /**
   * Optional: releases what the driver holds (an out-of-process driver stops its process). The
   * owner of a driver calls it once when done; every call after it rejects. Content is kept.
   */
  close?(): Promise<void>;

  /**
   * Optional, set by the driver's owner (DriverBase): a driver that talks to its backend over HTTP
   * calls it once per request it sends, retries included, with the backend's name of the
   * operation (`GetObject`, `PutBlock`). What a registry operation costs in backend requests
   * (and in a cloud bill) is counted from it.
   */
  onBackendRequest?: BackendRequestObserver;
}

/** The parameters a driver is created from: a driver's section of config.yml, as a plain object. */
export type DriverParameters = Record<string, unknown>;

/** How the registry will use a driver it creates, for drivers that check their backend at start. */
export interface DriverUse {
  /** Nothing will be written (`storage.maintenance.readonly.enabled`): a read-only root will do. */
  readOnly?: boolean;
  /**
   * The storage must already exist (a garbage collection): a missing root is a PathNotFoundError,
   * and nothing is created.
   */
  mustExist?: boolean;
}

/** Creates a driver from its parameters; registered with the factory under a name. */
export type DriverFactory = (
  parameters: DriverParameters,
  use: DriverUse,
) => StorageDriver | Promise<StorageDriver>;

/** The parameter names a driver reads, registered beside its factory to warn about the rest. */
export interface DriverParameterNames {
  /** The parameters the driver reads. */
  known: readonly string[];
  /** Parameters distribution's driver of the same name reads that Berth's ignores. */
  unsupported?: readonly string[];
}

/** Stable codes of the driver errors, for callers that switch on `error.code`. */
export const DriverErrorCode = {
  PathNotFound: "ERR_DRIVER_PATH_NOT_FOUND",
  InvalidPath: "ERR_DRIVER_INVALID_PATH",
  InvalidOffset: "ERR_DRIVER_INVALID_OFFSET",
  UnsupportedMethod: "ERR_DRIVER_UNSUPPORTED_METHOD",
  InvalidStorageDriver: "ERR_DRIVER_INVALID_STORAGE_DRIVER",
  InvalidParameter: "ERR_DRIVER_INVALID_PARAMETER",
  WriterClosed: "ERR_DRIVER_WRITER_CLOSED",
  DestinationClosed: "ERR_DRIVER_DESTINATION_CLOSED",
  Aborted: "ERR_DRIVER_ABORTED",
  Backend: "ERR_DRIVER_BACKEND",
} as const;

export type DriverErrorCode = (typeof DriverErrorCode)[keyof typeof DriverErrorCode];

/** The base of every driver error: the driver's name, the path where there is one, and a code. */
export class StorageDriverError extends Error {
  readonly code: DriverErrorCode;
  readonly driverName: string;
  readonly path: StoragePath | undefined;

  constructor(
    code: DriverErrorCode,
    driverName: string,
    path: StoragePath | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${driverName}: ${message}`, options);
    this.name = new.target.name;
    this.code = code;
    this.driverName = driverName;
    this.path = path;
  }
}

/** Nothing is stored at the path. */
export class PathNotFoundError extends StorageDriverError {
  constructor(driverName: string, path: StoragePath, options?: { cause?: unknown }) {
    super(DriverErrorCode.PathNotFound, driverName, path, `path not found: ${path}`, options);
  }
}

/** The path breaks the path rules (see StoragePath). */
export class InvalidPathError extends StorageDriverError {
  constructor(driverName: string, path: StoragePath) {
    super(DriverErrorCode.InvalidPath, driverName, path, `invalid path: ${JSON.stringify(path)}`);
  }
}

/** A read was asked for at an offset that cannot be (negative, or not a whole number). */
export class InvalidOffsetError extends StorageDriverError {
  readonly offset: number;

  constructor(driverName: string, path: StoragePath, offset: number) {
    super(
      DriverErrorCode.InvalidOffset,
      driverName,
      path,
      `invalid offset ${offset} for path ${path}`,
    );
    this.offset = offset;
  }
}

/** The driver does not implement this method. */
export class UnsupportedMethodError extends StorageDriverError {
  readonly method: string;

  constructor(driverName: string, method: string, path?: StoragePath) {
    super(
      DriverErrorCode.UnsupportedMethod,
      driverName,
      path,
      `method ${method} is not supported by this driver`,
    );
    this.method = method;
  }
}

/** No driver is registered under the name asked for (or it was registered twice). */
export class InvalidStorageDriverError extends StorageDriverError {
  constructor(driverName: string, message: string) {
    super(DriverErrorCode.InvalidStorageDriver, driverName, undefined, message);
  }
}

/** A driver parameter is missing or malformed; the message names the parameter and the value. */
export class InvalidParameterError extends StorageDriverError {
  readonly parameter: string;

  constructor(driverName: string, parameter: string, message: string) {
    super(
      DriverErrorCode.InvalidParameter,
      driverName,
      undefined,
      `parameter ${parameter}: ${message}`,
    );
    this.parameter = parameter;
  }
}

/** A FileWriter was used after `close`, `cancel` or `commit`. */
export class WriterClosedError extends StorageDriverError {
  constructor(driverName: string, path: StoragePath, state: string) {
    super(DriverErrorCode.WriterClosed, driverName, path, `writer for ${path} already ${state}`);
  }
}

/**
 * What `copyTo` rejects with when its destination closes or errors (its error is the `cause`)
 * before the copy is done: the reader of the content went away, the content is fine.
 */
export class DestinationClosedError extends StorageDriverError {
  constructor(driverName: string, path: StoragePath, cause?: unknown) {
    const reason = cause instanceof Error ? `: ${cause.message}` : "";
    super(
      DriverErrorCode.DestinationClosed,
      driverName,
      path,
      `the destination closed before the copy of ${path} was done${reason}`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * The call's AbortSignal aborted (the caller went away); `cause` is the signal's reason. Its
 * `name` is "AbortError", as for Node's and the SDKs' aborted calls.
 */
export class AbortedError extends StorageDriverError {
  constructor(
    driverName: string,
    operation: string,
    path: StoragePath | undefined,
    reason?: unknown,
  ) {
    super(
      DriverErrorCode.Aborted,
      driverName,
      path,
      `${operation} ${path ?? ""} aborted`,
      reason === undefined ? undefined : { cause: reason },
    );
    this.name = "AbortError";
  }
}

/** A backend failure that is none of the above; the message names the operation and the path. */
export class BackendError extends StorageDriverError {
  readonly operation: string;

  constructor(
    driverName: string,
    operation: string,
    path: StoragePath | undefined,
    options?: { cause?: unknown },
  ) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(
      DriverErrorCode.Backend,
      driverName,
      path,
      `${operation} ${path ?? ""} failed${reason}`,
      options,
    );
    this.operation = operation;
  }
}
