// The base wrapper every driver the factory creates is wrapped in: it checks paths and offsets
// before any driver code runs, fills in errors without a driver name, and records per-method
// counts and durations. Drivers therefore never validate paths themselves.

import type { Readable, Writable } from "node:stream";
import { copyContent } from "./copy.js";
import {
  InvalidOffsetError,
  InvalidPathError,
  type FileInfo,
  type FileWriter,
  type RedirectOptions,
  type StorageDriver,
  type StoragePath,
  type WalkFn,
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

/** Per-method metrics of one driver instance, keyed by method name. */
export type DriverMetrics = Record<string, MethodMetrics>;

/**
 * Wraps a driver with path validation and metrics. The wrapper is itself a StorageDriver with the
 * same name; `inner` is the driver it wraps and `metrics` what it has recorded.
 */
export class DriverBase implements StorageDriver {
  readonly metrics: DriverMetrics = {};

  constructor(readonly inner: StorageDriver) {}

  get name(): string {
    return this.inner.name;
  }

  getContent(path: StoragePath): Promise<Uint8Array> {
    return this.call("getContent", path, false, () => this.inner.getContent(path));
  }

  putContent(path: StoragePath, content: Uint8Array): Promise<void> {
    return this.call("putContent", path, false, () => this.inner.putContent(path, content));
  }

  reader(path: StoragePath, offset = 0): Promise<Readable> {
    return this.call("reader", path, false, () => {
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new InvalidOffsetError(this.name, path, offset);
      }
      return this.inner.reader(path, offset);
    });
  }

  /** Always offered: a driver without its own `copyTo` copies through its `reader`. */
  copyTo(path: StoragePath, destination: Writable, offset = 0, length?: number): Promise<void> {
    return this.call("copyTo", path, false, () => {
      if (!Number.isSafeInteger(offset) || offset < 0) {
        throw new InvalidOffsetError(this.name, path, offset);
      }
      if (length !== undefined && (!Number.isSafeInteger(length) || length < 0)) {
        throw new InvalidOffsetError(this.name, path, length);
      }
      return copyContent(this.inner, path, destination, offset, length);
    });
  }

  writer(path: StoragePath, append: boolean): Promise<FileWriter> {
    return this.call("writer", path, false, () => this.inner.writer(path, append));
  }

  stat(path: StoragePath): Promise<FileInfo> {
    return this.call("stat", path, true, () => this.inner.stat(path));
  }

  list(path: StoragePath): Promise<StoragePath[]> {
    return this.call("list", path, true, () => this.inner.list(path));
  }

  move(sourcePath: StoragePath, destPath: StoragePath): Promise<void> {
    return this.call("move", sourcePath, false, () => {
      this.checkPath(destPath, false);
      return this.inner.move(sourcePath, destPath);
    });
  }

  delete(path: StoragePath): Promise<void> {
    return this.call("delete", path, false, () => this.inner.delete(path));
  }

  redirectURL(path: StoragePath, options?: RedirectOptions): Promise<string | null> {
    return this.call("redirectURL", path, false, () => this.inner.redirectURL(path, options));
  }

  walk(path: StoragePath, fn: WalkFn): Promise<void> {
    return this.call("walk", path, true, () => this.inner.walk(path, fn));
  }

  private checkPath(path: StoragePath, rootAllowed: boolean): void {
    const valid = rootAllowed ? isValidPathOrRoot(path) : isValidPath(path);
    if (!valid) throw new InvalidPathError(this.name, path);
  }

  private async call<T>(
    method: string,
    path: StoragePath,
    rootAllowed: boolean,
    run: () => Promise<T>,
  ): Promise<T> {
    const metrics = (this.metrics[method] ??= { calls: 0, errors: 0, totalMs: 0 });
    metrics.calls++;
    const started = performance.now();
    try {
      this.checkPath(path, rootAllowed);
      return await run();
    } catch (error) {
      metrics.errors++;
      throw error;
    } finally {
      metrics.totalMs += performance.now() - started;
    }
  }
}
