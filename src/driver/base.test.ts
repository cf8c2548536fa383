// The base wrapper: paths and offsets are checked before any driver code runs, contract errors pass
// through unchanged, other errors are attributed to the driver, and every call is counted.

import assert from "node:assert/strict";
import { PassThrough, Readable, type Writable } from "node:stream";
import { describe, it } from "node:test";
import { DriverBase } from "./base.js";
import {
  BackendError,
  DriverErrorCode,
  InvalidOffsetError,
  InvalidPathError,
  PathNotFoundError,
  type FileInfo,
  type FileWriter,
  type StorageDriver,
  type WalkFn,
} from "./driver.js";

/** A driver that records each call it receives and answers with canned values. */
class RecordingDriver implements StorageDriver {
  readonly name = "recording";
  readonly calls: [string, ...unknown[]][] = [];
  failWith: Error | undefined;

  private record(method: string, ...args: unknown[]): void {
    this.calls.push([method, ...args]);
    if (this.failWith !== undefined) throw this.failWith;
  }

  async getContent(path: string): Promise<Uint8Array> {
    this.record("getContent", path);
    return new Uint8Array([1]);
  }
  async putContent(path: string, content: Uint8Array): Promise<void> {
    this.record("putContent", path, content);
  }
  async reader(path: string, offset?: number): Promise<Readable> {
    this.record("reader", path, offset);
    return Readable.from([]);
  }
  async writer(path: string, append: boolean): Promise<FileWriter> {
    this.record("writer", path, append);
    const calls = this.calls;
    return {
      size: 0,
      async write(chunk: Uint8Array) {
        calls.push(["write", chunk.length]);
      },
      async close() {
        calls.push(["close"]);
      },
      async cancel() {
        calls.push(["cancel"]);
      },
      async commit() {
        throw new Error("disk on fire");
      },
    };
  }
  async stat(path: string): Promise<FileInfo> {
    this.record("stat", path);
    return { path, size: 0, modTime: new Date(0), isDir: true };
  }
  async list(path: string): Promise<string[]> {
    this.record("list", path);
    return [];
  }
  async move(sourcePath: string, destPath: string): Promise<void> {
    this.record("move", sourcePath, destPath);
  }
  async delete(path: string): Promise<void> {
    this.record("delete", path);
  }
  async redirectURL(path: string): Promise<string | null> {
    this.record("redirectURL", path);
    return null;
  }
  async walk(path: string, fn: WalkFn): Promise<void> {
    this.record("walk", path);
    try {
      await fn({
        path: `${path === "/" ? "" : path}/child`,
        size: 1,
        modTime: new Date(0),
        isDir: false,
      });
    } catch (error) {
      // As a careless driver might: the callback's error wrapped in its own.
      throw new Error("walk failed", { cause: error });
    }
  }
}

function everyMethod(
  base: DriverBase,
  path: string,
): [string, () => Promise<unknown>, { rootAllowed: boolean }][] {
  return [
    ["getContent", () => base.getContent(path), { rootAllowed: false }],
    ["putContent", () => base.putContent(path, new Uint8Array()), { rootAllowed: false }],
    ["reader", () => base.reader(path, 0), { rootAllowed: false }],
    ["writer", () => base.writer(path, false), { rootAllowed: false }],
    ["stat", () => base.stat(path), { rootAllowed: true }],
    ["list", () => base.list(path), { rootAllowed: true }],
    ["move (source)", () => base.move(path, "/dest"), { rootAllowed: false }],
    ["move (destination)", () => base.move("/source", path), { rootAllowed: false }],
    ["delete", () => base.delete(path), { rootAllowed: false }],
    ["redirectURL", () => base.redirectURL(path), { rootAllowed: false }],
    ["walk", () => base.walk(path, () => {}), { rootAllowed: true }],
  ];
}

describe("DriverBase", () => {
  it("rejects invalid paths before the driver sees them", async () => {
    const inner = new RecordingDriver();
    const base = new DriverBase(inner);
    const invalid = ["", "a", "a/b", "/a/../b", "/a/./b", "/a//b", "/a/", "/a b", "/..", "/ä"];
    for (const path of invalid) {
      for (const [method, call] of everyMethod(base, path)) {
        const error = await call().catch((caught: unknown) => caught);
        assert.ok(
          error instanceof InvalidPathError,
          `${method}(${JSON.stringify(path)}): ${String(error)}`,
        );
        assert.equal(error.code, DriverErrorCode.InvalidPath);
        assert.equal(error.driverName, "recording");
        assert.equal(error.path, path);
      }
    }
    assert.deepEqual(inner.calls, []);
  });

  it("accepts the root / only for stat, list and walk", async () => {
    const inner = new RecordingDriver();
    const base = new DriverBase(inner);
    for (const [method, call, { rootAllowed }] of everyMethod(base, "/")) {
      const error = await call().then(
        () => undefined,
        (caught: unknown) => caught,
      );
      if (rootAllowed) assert.equal(error, undefined, `${method}(/)`);
      else assert.ok(error instanceof InvalidPathError, `${method}(/)`);
    }
    assert.deepEqual(
      inner.calls.map(([method]) => method),
      ["stat", "list", "walk"],
    );
  });

  it("rejects a negative or fractional offset before the driver sees it, and defaults it to 0", async () => {
    const inner = new RecordingDriver();
    const base = new DriverBase(inner);
    for (const offset of [-1, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      const error = await base.reader("/file", offset).catch((caught: unknown) => caught);
      assert.ok(error instanceof InvalidOffsetError, `offset ${offset}`);
      assert.equal(error.path, "/file");
      assert.ok(Object.is(error.offset, offset));
    }
    assert.deepEqual(inner.calls, []);
    await base.reader("/file");
    await base.reader("/file", 7);
    assert.deepEqual(inner.calls, [
      ["reader", "/file", 0],
      ["reader", "/file", 7],
    ]);
  });

  it("passes valid calls through with their arguments, and the driver's name", async () => {
    const inner = new RecordingDriver();
    const base = new DriverBase(inner);
    const content = new Uint8Array([1, 2, 3]);
    assert.equal(base.name, "recording");
    assert.equal(base.inner, inner);
    await base.putContent("/a/b", content);
    await base.writer("/a/b", true);
    await base.move("/a/b", "/c");
    assert.deepEqual(inner.calls, [
      ["putContent", "/a/b", content],
      ["writer", "/a/b", true],
      ["move", "/a/b", "/c"],
    ]);
  });

  it("passes the driver's errors through unchanged", async () => {
    const inner = new RecordingDriver();
    const failure = new PathNotFoundError("recording", "/missing");
    inner.failWith = failure;
    const base = new DriverBase(inner);
    await assert.rejects(base.getContent("/missing"), (error) => error === failure);
  });

  it("wraps any other error in a BackendError naming the driver, method and path", async () => {
    const inner = new RecordingDriver();
    const failure = new TypeError("socket hang up");
    inner.failWith = failure;
    const base = new DriverBase(inner);
    await assert.rejects(base.stat("/a/b"), (error: unknown) => {
      assert.ok(error instanceof BackendError);
      assert.equal(error.code, DriverErrorCode.Backend);
      assert.equal(error.driverName, "recording");
      assert.equal(error.operation, "stat");
      assert.equal(error.path, "/a/b");
      assert.equal(error.cause, failure);
      assert.match(error.message, /^recording: stat \/a\/b failed: socket hang up$/);
      return true;
    });
    inner.failWith = undefined;
    const writer = await base.writer("/w", false);
    await assert.rejects(writer.commit(), (error: unknown) => {
      assert.ok(error instanceof BackendError);
      assert.equal(error.operation, "writer.commit");
      assert.equal(error.path, "/w");
      return true;
    });
  });

  it("gives back an error of walk's callback as it was thrown", async () => {
    const base = new DriverBase(new RecordingDriver());
    const mine = new Error("stop here");
    await assert.rejects(
      base.walk("/a", () => {
        throw mine;
      }),
      (error) => error === mine,
    );
  });

  it("counts a writer's write, close, cancel and commit", async () => {
    const inner = new RecordingDriver();
    const base = new DriverBase(inner);
    const first = await base.writer("/a", false);
    await first.write(new Uint8Array(3));
    await first.write(new Uint8Array(4));
    await first.close();
    const second = await base.writer("/a", true);
    await second.cancel();
    await (await base.writer("/a", false)).commit().catch(() => {});
    assert.equal(base.metrics["writer.write"]?.calls, 2);
    assert.equal(base.metrics["writer.close"]?.calls, 1);
    assert.equal(base.metrics["writer.cancel"]?.calls, 1);
    assert.equal(base.metrics["writer.commit"]?.calls, 1);
    assert.equal(base.metrics["writer.commit"]?.errors, 1);
    assert.ok((base.metrics["writer.write"]?.totalMs ?? -1) >= 0);
    assert.deepEqual(
      inner.calls.filter(([method]) => ["write", "close", "cancel"].includes(method)),
      [["write", 3], ["write", 4], ["close"], ["cancel"]],
    );
  });

  it("cancels a driver that ignores the signal: before a call, after its copyTo, between writes", async () => {
    class Deaf extends RecordingDriver {
      async copyTo(_path: string, destination: Writable): Promise<void> {
        destination.write(Buffer.from("all of it"));
        controller.abort();
      }
    }
    const controller = new AbortController();
    const base = new DriverBase(new Deaf());
    const { signal } = controller;
    const aborted = (error: unknown) =>
      (error as { code?: string }).code === DriverErrorCode.Aborted;
    await assert.rejects(base.copyTo("/a", new PassThrough(), 0, undefined, { signal }), aborted);
    await assert.rejects(
      base.stat("/a").then(() => base.list("/a", { signal })),
      aborted,
    );
    const fresh = new AbortController();
    const writer = await base.writer("/w", false, { signal: fresh.signal });
    await writer.write(new Uint8Array(1));
    fresh.abort();
    await assert.rejects(writer.write(new Uint8Array(1)), aborted);
    await assert.rejects(writer.commit(), aborted);
    await writer.close();
  });

  it("counts calls, errors and time per method", async () => {
    const inner = new RecordingDriver();
    const base = new DriverBase(inner);
    await base.stat("/a");
    await base.stat("/b");
    await base.stat("bad").catch(() => {});
    inner.failWith = new PathNotFoundError("recording", "/c");
    await base.getContent("/c").catch(() => {});
    assert.equal(base.metrics.stat?.calls, 3);
    assert.equal(base.metrics.stat?.errors, 1);
    assert.equal(base.metrics.getContent?.calls, 1);
    assert.equal(base.metrics.getContent?.errors, 1);
    assert.ok((base.metrics.stat?.totalMs ?? -1) >= 0);
    assert.equal(base.metrics.list, undefined, "methods not called have no entry");
  });
});
