// Over 400 lines: one class wrapping every contract method, and the writer wrapper it hands out.
// The base wrapper every driver the factory creates is wrapped in: it checks paths and offsets
// before any driver code runs, turns any error that is not a contract error into a BackendError
// naming the driver, the method and the path (the original as its `cause`), and records
// per-method counts and durations, those of its writers' calls too. Drivers therefore never
// validate paths themselves, and a third-party driver's raw Error reaches no caller unattributed.

import type { Readable, Writable } from "node:stream";
import { copyContent } from "./copy.js";
import {
  AbortedError,
  BackendError,
  type BackendRequestObserver,
  InvalidOffsetError,
  InvalidPathError,
  PathNotFoundError,
  StorageDriverError,
  type CallOptions,
  type CommitOptions,
  type FileInfo,
  type FileWriter,
  type RedirectOptions,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
  type WriterOptions,
} from "./driver.js";
import { isValidPath, isValidPathOrRoot } from "./paths.js";

/** Counters for one driver method. */
export interface MethodMetrics {
  /** Calls made. */
  calls: number;
  /** Calls that rejected. */
  errors: number;
  /** Total time spent in the method, in milliseconds (for `reader`/`writer`: until they resolve). */
  totalMs: number;
}

/**
 * Per-method metrics of one driver instance, keyed by method name; a writer's calls are under
 * "writer.write", "writer.close", "writer.cancel", "writer.commit" and "writer.commitTo".
 */
export type DriverMetrics = Record<string, MethodMetrics>;

/** How a driver call ended: a missing path is an answer, not a failure of the backend. */
export type CallOutcome = "ok" | "not_found" | "aborted" | "error";

/**
 * Told of every call DriverBase measures, as it ends: the method (as in DriverMetrics), how long
 * it took in seconds and how it ended. It runs on every driver call, so it must be cheap.
 */
export type DriverCallObserver = (method: string, seconds: number, outcome: CallOutcome) => void;

/**
 * Runs each call DriverBase makes (`run`, which rejects with the driver's own error), so that the
 * call happens inside whatever it sets up: a tracing span. None by default.
 */
export type DriverCallTracer = <T>(
  method: string,
  path: StoragePath,
  run: () => Promise<T>,
) => Promise<T>;

/**
 * Wraps a driver with path validation and metrics. The wrapper is itself a StorageDriver with the
 * same name; `inner` is the driver it wraps and `metrics` what it has recorded.
 */
export class DriverBase implements StorageDriver {
  readonly metrics: DriverMetrics = {};
  /** Told of each call as it ends (Prometheus metrics, tracing); none by default. */
  observer: DriverCallObserver | undefined;
  /** Wraps each call (OpenTelemetry spans); none by default, and then it costs one check. */
  tracer: DriverCallTracer | undefined;

  /**
   * Requests the driver sent to its backend, by operation (see StorageDriver.onBackendRequest);
   * empty for a driver that does not report them.
   */
  readonly backendRequests: Record<string, number> = {};
  /** Told of each backend request as `backendRequests` counts it (Prometheus); none by default. */
  backendObserver: BackendRequestObserver | undefined;

  constructor(readonly inner: StorageDriver) {
    inner.onBackendRequest = (operation) => {
      this.backendRequests[operation] = (this.backendRequests[operation] ?? 0) + 1;
      this.backendObserver?.(operation);
    };
  }

  get name(): string {
    return this.inner.name;
  }

  getContent(path: StoragePath): Promise<Uint8Array> {
    return this.call("getContent", path, false, () => this.inner.getContent(path));
  }

  putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    return this.call("putContent", path, false, () => this.inner.putContent(path, content));
  }

  /**
   * The driver's conditional create when it has one; else stat then putContent, which two callers
   * racing can both win (see StorageDriver.putContentIfAbsent).
   */
  putContentIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean> {
    return this.call("putContentIfAbsent", path, false, async () => {
      if (this.inner.putContentIfAbsent !== undefined) {
        return this.inner.putContentIfAbsent(path, content);
      }
      try {
        await this.inner.stat(path);
        return false;
      } catch (error) {
        if (!(error instanceof PathNotFoundError)) throw error;
      }
      await this.inner.putContent(path, content);
      return true;
    });
  }

  /** The driver's own touch when it has one; else putContent of no bytes (durable, dearer). */
  touch(path: StoragePath): Promise<void> {
    return this.call("touch", path, false, () =>
      this.inner.touch !== undefined
        ? this.inner.touch(path)
        : this.inner.putContent(path, new Uint8Array(0)),
    );
  }

  /** The driver's own unsynced put when it has one; else putContent (durable, dearer). */
  putContentUnsynced(path: StoragePath, content: Uint8Array): Promise<void> {
    return this.call("putContentUnsynced", path, false, () =>
      this.inner.putContentUnsynced !== undefined
        ? this.inner.putContentUnsynced(path, content)
        : this.inner.putContent(path, content),
    );
  }

  reader(path: StoragePath, offset = 0, options?: CallOptions): Promise<Readable> {
    const signal = options?.signal;
    return this.call(
      "reader",
      path,
      false,
      async () => {
        if (!Number.isSafeInteger(offset) || offset < 0) {
          throw new InvalidOffsetError(this.name, path, offset);
        }
        if (signal === undefined) return this.inner.reader(path, offset);
        // The driver gets a signal of its own, aborted only after the stream has been destroyed
        // with AbortedError, so that a reader of the stream sees the contract's error and not
        // the one an SDK would destroy it with.
        const inner = new AbortController();
        let stream: Readable | undefined;
        const abort = () => {
          stream?.destroy(new AbortedError(this.name, "reader", path, signal.reason));
          inner.abort(signal.reason);
        };
        signal.addEventListener("abort", abort, { once: true });
        try {
          stream = await this.inner.reader(path, offset, { ...options, signal: inner.signal });
        } catch (error) {
          signal.removeEventListener("abort", abort);
          throw error;
        }
        if (signal.aborted) {
          stream.destroy();
          throw new AbortedError(this.name, "reader", path, signal.reason);
        }
        stream.once("close", () => signal.removeEventListener("abort", abort));
        return stream;
      },
      signal,
    );
  }

  /** Always offered: a driver without its own `copyTo` copies through its `reader`. */
  copyTo(
    path: StoragePath,
    destination: Writable,
    offset = 0,
    length?: number,
    options?: CallOptions,
  ): Promise<void> {
    return this.call(
      "copyTo",
      path,
      false,
      async () => {
        if (!Number.isSafeInteger(offset) || offset < 0) {
          throw new InvalidOffsetError(this.name, path, offset);
        }
        if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
          throw new InvalidOffsetError(this.name, path, length);
        }
        await copyContent(this.inner, path, destination, offset, length, options);
        // A driver that ignores the signal copied on: the caller gave up all the same.
        const signal = options?.signal;
        if (signal?.aborted) throw new AbortedError(this.name, "copyTo", path, signal.reason);
      },
      options?.signal,
    );
  }

  writer(path: StoragePath, append: boolean, options?: WriterOptions): Promise<FileWriter> {
    const signal = options?.signal;
    return this.call(
      "writer",
      path,
      false,
      async () => {
        const writer = await this.inner.writer(path, append, options);
        return new MeasuredWriter(
          writer,
          (method, run, checked) => this.measure(method, path, run, checked ? signal : undefined),
          (destination) => this.checkPath(destination, false),
        );
      },
      signal,
    );
  }

  stat(path: StoragePath): Promise<FileInfo> {
    return this.call("stat", path, true, () => this.inner.stat(path));
  }

  list(path: StoragePath, options?: CallOptions): Promise<StoragePath[]> {
    return this.call("list", path, true, () => this.inner.list(path, options), options?.signal);
  }

  move(sourcePath: StoragePath, destPath: StoragePath, options?: CallOptions): Promise<void> {
    return this.call(
      "move",
      sourcePath,
      false,
      () => {
        this.checkPath(destPath, false);
        return this.inner.move(sourcePath, destPath, options);
      },
      options?.signal,
    );
  }

  delete(path: StoragePath, options?: CallOptions): Promise<void> {
    return this.call(
      "delete",
      path,
      false,
      () => this.inner.delete(path, options),
      options?.signal,
    );
  }

  redirectURL(path: StoragePath, options?: RedirectOptions): Promise<string | null> {
    return this.call("redirectURL", path, false, () => this.inner.redirectURL(path, options));
  }

  walk(path: StoragePath, fn: WalkFn, options?: CallOptions): Promise<void> {
    const signal = options?.signal;
    // An error of the callback is the caller's own: it comes back as it was thrown, unwrapped.
    // An abort stops the walk before the next callback, whatever the driver does with the signal.
    const failed: { error?: unknown } = {};
    const steer: WalkFn = async (info) => {
      try {
        if (signal?.aborted) throw new AbortedError(this.name, "walk", path, signal.reason);
        return await fn(info);
      } catch (error) {
        failed.error = error;
        throw error;
      }
    };
    return this.call(
      "walk",
      path,
      true,
      async () => {
        try {
          return await this.inner.walk(path, steer, options);
        } catch (error) {
          throw "error" in failed ? new CallbackError(failed.error) : error;
        }
      },
      signal,
    );
  }

  /** Closes the wrapped driver (see StorageDriver.close); nothing to do for one without close. */
  async close(): Promise<void> {
    await this.inner.close?.();
  }

  private checkPath(path: StoragePath, rootAllowed: boolean): void {
    const valid = rootAllowed ? isValidPathOrRoot(path) : isValidPath(path);
    if (!valid) throw new InvalidPathError(this.name, path);
  }

  private call<T>(
    method: string,
    path: StoragePath,
    rootAllowed: boolean,
    run: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    return this.measure(
      method,
      path,
      () => {
        this.checkPath(path, rootAllowed);
        return run();
      },
      signal,
    );
  }

  /**
   * Runs `run`, counting it under `method` and attributing a non-contract error to it. With a
   * `signal`, an aborted call rejects with AbortedError: before `run` when it aborted already,
   * and in place of whatever the driver rejected with once it has (an SDK's own AbortError).
   */
  private async measure<T>(
    method: string,
    path: StoragePath,
    run: () => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const metrics = (this.metrics[method] ??= { calls: 0, errors: 0, totalMs: 0 });
    metrics.calls++;
    const started = performance.now();
    let outcome: CallOutcome = "ok";
    try {
      if (signal?.aborted) throw new AbortedError(this.name, method, path, signal.reason);
      return await (this.tracer === undefined ? run() : this.tracer(method, path, run));
    } catch (error) {
      metrics.errors++;
      outcome = "error";
      if (error instanceof CallbackError) throw error.error;
      if (error instanceof AbortedError || signal?.aborted) outcome = "aborted";
      if (error instanceof AbortedError) throw error;
      if (signal?.aborted) throw new AbortedError(this.name, method, path, signal.reason);
      if (error instanceof PathNotFoundError) outcome = "not_found";
      if (error instanceof StorageDriverError) throw error;
      throw new BackendError(this.name, method, path, { cause: error });
    } finally {
      const elapsed = performance.now() - started;
      metrics.totalMs += elapsed;
      this.observer?.(method, elapsed / 1000, outcome);
    }
  }
}

/** Carries an error of walk's callback past the wrapping of driver errors. */
class CallbackError {
  constructor(readonly error: unknown) {}
}

/** A driver's FileWriter with each call measured (and its errors attributed) by DriverBase. */
class MeasuredWriter implements FileWriter {
  constructor(
    /** The driver's own writer (for capabilities beyond the contract: driver/remote's local writes). */
    readonly inner: FileWriter,
    /** `checked`: the call rejects once the writer's signal has aborted. */
    private readonly measure: <T>(
      method: string,
      run: () => Promise<T>,
      checked: boolean,
    ) => Promise<T>,
    /** Throws InvalidPathError for a path `commitTo` may not publish at. */
    checkPath: (path: StoragePath) => void,
  ) {
    // Offered only when the driver's writer has them: callers fall back to commit and move, or
    // to a stat and commitTo.
    const publishing =
      <T>(method: string, publish: (path: StoragePath) => Promise<T>) =>
      (destination: StoragePath) =>
        this.measure(
          method,
          () => {
            checkPath(destination);
            return publish(destination);
          },
          true,
        );
    if (inner.commitTo !== undefined) {
      this.commitTo = publishing("writer.commitTo", inner.commitTo.bind(inner));
    }
    if (inner.commitToIfAbsent !== undefined) {
      this.commitToIfAbsent = publishing(
        "writer.commitToIfAbsent",
        inner.commitToIfAbsent.bind(inner),
      );
    }
  }

  readonly commitTo?: (path: StoragePath) => Promise<void>;
  readonly commitToIfAbsent?: (path: StoragePath) => Promise<boolean>;

  get size(): number {
    return this.inner.size;
  }

  write(chunk: Uint8Array): Promise<void> {
    return this.measure("writer.write", () => this.inner.write(chunk), true);
  }

  close(): Promise<void> {
    return this.measure("writer.close", () => this.inner.close(), false);
  }

  cancel(): Promise<void> {
    return this.measure("writer.cancel", () => this.inner.cancel(), false);
  }

  commit(options?: CommitOptions): Promise<void> {
    return this.measure("writer.commit", () => this.inner.commit(options), true);
  }
}
