// The shared storage driver test suite. Every driver, in-tree or third-party, runs the same tests
// by handing `runDriverSuite` a constructor; the tests are registered with node:test. They cover
// what distribution's driver suite covers (registry/storage/driver/testsuites) and the parts of
// Berth's contract it leaves open: resumable writers, cancel, walk order, the error fields.
//
// Every test works below its own fresh top-level directory (`/suite-<random>`) and deletes it at
// the end, then checks that nothing is left there, so the tests never see each other's files and
// a driver whose backend is shared (a bucket, a container) can run the suite alongside other data.

import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { DriverBase } from "../base.js";
import { DriverErrorCode, type FileInfo, type StorageDriver, type WalkAction } from "../driver.js";
import { isValidPath } from "../paths.js";
import {
  CollectingWritable,
  ContentStream,
  MemoryWatch,
  assertSameBytes,
  hashStream,
  openFilesNamed,
  randomContent,
  randomName,
  readAll,
  rejectsWith,
  sleep,
} from "./support.js";

const MiB = 1024 * 1024;

/** Builds the driver under test: a fresh instance, or one shared by the whole suite. */
export type DriverConstructor = () => StorageDriver | Promise<StorageDriver>;

/** Knobs for backends that are slow or different; the defaults suit local drivers. */
export interface DriverSuiteOptions {
  /**
   * Bytes streamed through a writer and back through a reader by the large-content test. Default
   * 64 MiB. The memory bound that test checks (RSS growth under half the size, at least 32 MiB)
   * only means something at 64 MiB and above.
   */
  largeSize?: number;
  /**
   * True for a driver that keeps content in process memory (inmemory): the large-content test then
   * does not bound memory while writing, only while reading.
   */
  contentInMemory?: boolean;
  /**
   * The coarsest step of the backend's modification times, in milliseconds (S3 and Azure report
   * whole seconds). The modTime test waits a little longer than this between two writes. Default
   * 1000.
   */
  modTimeResolutionMs?: number;
  /** Timeout of each test in milliseconds. Default 120000. */
  timeout?: number;
}

const { PathNotFound, InvalidPath, InvalidOffset, WriterClosed } = DriverErrorCode;

/**
 * Registers the shared driver tests with node:test under `describe("storage driver suite: <name>")`.
 * `construct` is called once, before the first test; what it returns is wrapped in DriverBase
 * (path checks) unless it already is one, as `createDriver` returns. Anything to tear down
 * afterwards (a temp directory, a server) belongs in the caller's own `after` hook.
 */
export function runDriverSuite(
  name: string,
  construct: DriverConstructor,
  options: DriverSuiteOptions = {},
): void {
  const largeSize = options.largeSize ?? 64 * MiB;
  const modTimeResolutionMs = options.modTimeResolutionMs ?? 1000;
  const timeout = options.timeout ?? 120_000;

  describe(`storage driver suite: ${name}`, () => {
    let driver: DriverBase;

    before(
      async () => {
        const built = await construct();
        driver = built instanceof DriverBase ? built : new DriverBase(built);
      },
      { timeout },
    );

    /** Registers a test that runs in a fresh directory, removed (and checked gone) afterwards. */
    function test(title: string, body: (scope: Scope) => Promise<void>): void {
      it(title, { timeout }, async () => {
        const scope = new Scope(driver);
        try {
          await body(scope);
        } catch (error) {
          await scope.remove().catch(() => {});
          throw error;
        }
        await scope.remove();
        await rejectsWith(
          driver,
          driver.stat(scope.root),
          { code: PathNotFound },
          "after clean-up",
        );
      });
    }

    // ---- paths ----

    test("the root / always exists for list and stat", async (s) => {
      assert.ok(Array.isArray(await driver.list("/")));
      assert.equal((await driver.stat("/")).isDir, true);
      await driver.putContent(s.path("file"), randomContent(8));
      assert.ok((await driver.list("/")).includes(s.root), "list(/) includes the new directory");
      const root = await driver.stat("/");
      assert.equal(root.path, "/");
      assert.equal(root.isDir, true);
    });

    test("accepts every valid path", async (s) => {
      const names = [
        "a",
        "2",
        "aa",
        "a.a",
        "0-9/abcdefg",
        "abcdefg/z.75",
        "abc/1.2.3.4.5-6_zyx/123.z/4",
        "docker/docker-registry",
        "123.abc",
        "abc./abc",
        ".abc",
        "a--b",
        "a-.b",
        "_.abc",
        "Docker2/docker-registry",
        "Abc/Cba",
        "...",
        "a..b",
        "..a",
        "-",
        "_",
      ];
      for (const name of names) {
        const path = s.path(name);
        const content = randomContent(64);
        await driver.putContent(path, content);
        assertSameBytes(await driver.getContent(path), content, path);
        assert.equal((await driver.stat(path)).size, 64, path);
      }
    });

    test("rejects invalid paths in every method with InvalidPathError", async (s) => {
      const existing = s.path("existing");
      const content = randomContent(16);
      await driver.putContent(existing, content);
      const r = s.root;
      const invalid = [
        "",
        "abc",
        "abc/def",
        "123.abc",
        "//bcd",
        "/abc_123/",
        `${r}/`,
        `${r}//x`,
        `${r}/a/../b`,
        `${r}/./b`,
        `${r}/a/.`,
        `${r}/..`,
        `${r}/a/..`,
        `${r}/a b`,
        `${r}/a\tb`,
        `${r}/a\nb`,
        `${r}/a\u0000b`,
        `${r}/\u00e4`,
        `${r}/a\\b`,
        `${r}/a:b`,
        `${r}/a~b`,
        `${r}/a*`,
        `${r}/a%2Fb`,
        `${r}/a?b`,
        `${r}/a#b`,
        `${r}\\b`,
        "/.",
        "/..",
        "/../etc/passwd",
        "/a/../..",
        ` ${r}/a`,
      ];
      const calls: [string, (path: string) => Promise<unknown>][] = [
        ["getContent", (p) => driver.getContent(p)],
        ["putContent", (p) => driver.putContent(p, content)],
        ["reader", (p) => driver.reader(p, 0)],
        ["writer(append=false)", (p) => driver.writer(p, false)],
        ["writer(append=true)", (p) => driver.writer(p, true)],
        ["stat", (p) => driver.stat(p)],
        ["list", (p) => driver.list(p)],
        ["move from", (p) => driver.move(p, s.path("moved"))],
        ["move to", (p) => driver.move(existing, p)],
        ["delete", (p) => driver.delete(p)],
        ["redirectURL", (p) => driver.redirectURL(p)],
        [
          "walk",
          (p) => driver.walk(p, () => assert.fail(`walk(${JSON.stringify(p)}) called back`)),
        ],
      ];
      const rootOnly = new Set(["stat", "list", "walk"]);
      for (const [method, call] of calls) {
        const paths = rootOnly.has(method) ? invalid : [...invalid, "/"];
        for (const path of paths) {
          await rejectsWith(
            driver,
            call(path),
            { code: InvalidPath, path },
            `${method}(${JSON.stringify(path)})`,
          );
        }
      }
      assertSameBytes(await driver.getContent(existing), content, "the file used as a move source");
      assert.deepEqual(await driver.list(s.root), [existing], "nothing else was written");
    });

    // ---- content ----

    const samples: [string, Buffer][] = [
      ["empty", Buffer.alloc(0)],
      ["one byte", Buffer.from("a")],
      ["UTF-8", Buffer.from([0xc3, 0x9f])],
      ["non-UTF-8", Buffer.from([0x80, 0x80, 0x80, 0x80])],
      ["binary", Buffer.from([0xff, 0xfe, 0x00, 0xc0, 0x00, 0x0a, 0x0d])],
      ["32 random bytes", randomContent(32)],
      ["1 MiB random", randomContent(MiB)],
    ];

    test("putContent then getContent, reader and stat give the same bytes", async (s) => {
      for (const [what, content] of samples) {
        const path = s.path(randomName(), randomName());
        await driver.putContent(path, content);
        assertSameBytes(await driver.getContent(path), content, `${what}: getContent`);
        assertSameBytes(await readAll(await driver.reader(path, 0)), content, `${what}: reader`);
        const info = await driver.stat(path);
        assert.equal(info.size, content.length, `${what}: stat size`);
        assert.equal(info.isDir, false, `${what}: stat isDir`);
      }
    });

    test("a writer streams content that reader and getContent give back", async (s) => {
      for (const [what, content] of samples) {
        const path = s.path(randomName(), randomName());
        const writer = await driver.writer(path, false);
        assert.equal(writer.size, 0);
        const step = Math.max(1, Math.ceil(content.length / 3));
        for (let at = 0; at < content.length; at += step) {
          await writer.write(content.subarray(at, at + step));
          assert.equal(
            writer.size,
            Math.min(at + step, content.length),
            `${what}: size while writing`,
          );
        }
        await writer.commit();
        assertSameBytes(await readAll(await driver.reader(path, 0)), content, `${what}: reader`);
        assertSameBytes(await driver.getContent(path), content, `${what}: getContent`);
        assert.equal((await driver.stat(path)).size, content.length, `${what}: stat size`);
      }
    });

    test("putContent keeps the bytes it was given, not later changes to the buffer", async (s) => {
      const path = s.path("file");
      const content = randomContent(1024);
      const expected = Buffer.from(content);
      await driver.putContent(path, content);
      content.fill(0);
      assertSameBytes(await driver.getContent(path), expected, "getContent");
    });

    test("putContent over longer content truncates it", async (s) => {
      const path = s.path("dir", "file");
      await driver.putContent(path, randomContent(MiB));
      const shorter = randomContent(1024);
      await driver.putContent(path, shorter);
      assertSameBytes(await driver.getContent(path), shorter, "after the shorter put");
      assert.equal((await driver.stat(path)).size, 1024);
      await driver.putContent(path, Buffer.alloc(0));
      assert.equal((await driver.getContent(path)).length, 0, "after an empty put");
    });

    test("a committed writer over longer content replaces it", async (s) => {
      const path = s.path("file");
      await driver.putContent(path, randomContent(64 * 1024));
      const writer = await driver.writer(path, false);
      const shorter = randomContent(10);
      await writer.write(shorter);
      await writer.commit();
      assertSameBytes(await driver.getContent(path), shorter, "content");
      assert.equal((await driver.stat(path)).size, 10);
    });

    test("a missing path rejects with PathNotFoundError naming it", async (s) => {
      const missing = s.path("missing", "file");
      await driver.putContent(s.path("other"), randomContent(4));
      await rejectsWith(
        driver,
        driver.getContent(missing),
        { code: PathNotFound, path: missing },
        "getContent",
      );
      await rejectsWith(
        driver,
        driver.reader(missing, 0),
        { code: PathNotFound, path: missing },
        "reader(0)",
      );
      await rejectsWith(
        driver,
        driver.reader(missing, 64),
        { code: PathNotFound, path: missing },
        "reader(64)",
      );
      await rejectsWith(
        driver,
        driver.stat(missing),
        { code: PathNotFound, path: missing },
        "stat",
      );
      await rejectsWith(
        driver,
        driver.list(missing),
        { code: PathNotFound, path: missing },
        "list",
      );
      await rejectsWith(
        driver,
        driver.delete(missing),
        { code: PathNotFound, path: missing },
        "delete",
      );
      await rejectsWith(
        driver,
        driver.writer(missing, true),
        { code: PathNotFound, path: missing },
        "writer(append)",
      );
      await rejectsWith(
        driver,
        driver.walk(missing, () => assert.fail("walk called back")),
        { code: PathNotFound, path: missing },
        "walk",
      );
    });

    test(`${largeSize} bytes stream through a writer and a reader in bounded memory`, async (s) => {
      const path = s.path("large", "blob");
      // Growth allowed while the content streams: far below the content itself.
      const limit = Math.max(largeSize / 2, 32 * MiB);
      const content = new ContentStream(largeSize, MiB);
      const writing = new MemoryWatch(8 * MiB);
      const writer = await driver.writer(path, false);
      for (let chunk = content.next(); chunk !== undefined; chunk = content.next()) {
        await writer.write(chunk);
        writing.passed(chunk.length);
      }
      assert.equal(writer.size, largeSize);
      await writer.commit();
      const written = content.digest();
      if (!options.contentInMemory) {
        assert.ok(
          writing.growth() < limit,
          `writing ${largeSize} bytes grew memory by ${writing.growth()} bytes (limit ${limit})`,
        );
      }
      assert.equal((await driver.stat(path)).size, largeSize);

      const reading = new MemoryWatch(8 * MiB);
      const read = await hashStream(await driver.reader(path, 0), (length) =>
        reading.passed(length),
      );
      assert.equal(read.size, largeSize, "bytes read");
      assert.equal(read.digest, written, "sha256 of the bytes read");
      assert.ok(
        reading.growth() < limit,
        `reading ${largeSize} bytes grew memory by ${reading.growth()} bytes (limit ${limit})`,
      );
    });

    test("copyTo writes the content, from an offset, or a range of it", async (s) => {
      const path = s.path("file");
      // Several MiB, so a driver copying with large buffers goes round more than once.
      const content = randomContent(5 * MiB + 123);
      await driver.putContent(path, content);
      const copy = async (offset: number, length?: number) => {
        const destination = new CollectingWritable();
        await driver.copyTo(path, destination, offset, length);
        return destination.content();
      };
      assertSameBytes(await copy(0), content, "copyTo(0)");
      for (const offset of [1, MiB - 1, MiB, 2 * MiB + 1, 3 * MiB + 7, content.length - 1]) {
        assertSameBytes(await copy(offset), content.subarray(offset), `copyTo(${offset})`);
      }
      for (const [offset, length] of [
        [0, 0],
        [0, 1],
        [5, 100],
        [MiB - 10, 20],
        [2 * MiB - 10, 20],
        [123, 4 * MiB],
        [content.length - 10, 10],
      ]) {
        assertSameBytes(
          await copy(offset, length),
          content.subarray(offset, offset + length),
          `copyTo(${offset}, ${length})`,
        );
      }
      assertSameBytes(
        await copy(content.length - 10, 1000),
        content.subarray(content.length - 10),
        "a length past the end copies up to the end",
      );
      for (const offset of [content.length, content.length + 10]) {
        assert.equal((await copy(offset)).length, 0, `copyTo(${offset}) copies nothing`);
      }
      for (const [offset, length] of [
        [-1, undefined],
        [1.5, undefined],
        [0, -1],
      ]) {
        await rejectsWith(
          driver,
          driver.copyTo(path, new CollectingWritable(), offset!, length),
          { code: InvalidOffset, path },
          `copyTo(${offset}, ${length})`,
        );
      }
      await rejectsWith(
        driver,
        driver.copyTo(s.path("missing"), new CollectingWritable(), 0),
        { code: PathNotFound, path: s.path("missing") },
        "copyTo of a missing path",
      );
    });

    test("copyTo rejects and keeps no file open when the destination fails or closes", async (s) => {
      const name = randomName(16);
      const path = s.path(name);
      const content = randomContent(3 * MiB);
      await driver.putContent(path, content);
      for (const how of ["error", "close"] as const) {
        const destination = new CollectingWritable({ bytes: MiB + 5, how });
        await assert.rejects(driver.copyTo(path, destination, 0), `a destination that does ${how}`);
        destination.destroy();
        const received = destination.content();
        assertSameBytes(received, content.subarray(0, received.length), `before the ${how}`);
        assert.equal(await openFilesNamed(name), 0, `files left open after the ${how}`);
      }
      // The content is still whole and copies again.
      const destination = new CollectingWritable();
      await driver.copyTo(path, destination, 0);
      assertSameBytes(destination.content(), content, "copyTo after the failures");
    });

    test("reader starts at the offset asked for", async (s) => {
      const path = s.path("file");
      const content = randomContent(96);
      await driver.putContent(path, content);
      for (const offset of [0, 1, 32, 64, 95]) {
        assertSameBytes(
          await readAll(await driver.reader(path, offset)),
          content.subarray(offset),
          `reader(${offset})`,
        );
      }
      for (const offset of [96, 97, 10_000]) {
        assert.equal(
          (await readAll(await driver.reader(path, offset))).length,
          0,
          `reader(${offset}) is empty`,
        );
      }
      assertSameBytes(await readAll(await driver.reader(path)), content, "reader() reads from 0");
      for (const offset of [-1, -96, 1.5, Number.NaN]) {
        const error = await rejectsWith(
          driver,
          driver.reader(path, offset),
          { code: InvalidOffset, path },
          `reader(${offset})`,
        );
        assert.ok(Object.is((error as { offset?: number }).offset, offset), "error.offset");
      }
    });

    // ---- writers ----

    async function appendInSessions(s: Scope, sessionSizes: number[]): Promise<void> {
      const path = s.path("upload", "data");
      const sessions = sessionSizes.map((size) => randomContent(size));
      const full = Buffer.concat(sessions);
      let expectedSize = 0;
      for (const [index, session] of sessions.entries()) {
        const writer = await driver.writer(path, index > 0);
        assert.equal(writer.size, expectedSize, `session ${index}: size on opening`);
        // Several writes per session, of uneven sizes.
        const step = Math.max(1, Math.ceil(session.length / 3) + 1);
        for (let at = 0; at < session.length; at += step) {
          await writer.write(session.subarray(at, at + step));
        }
        expectedSize += session.length;
        assert.equal(writer.size, expectedSize, `session ${index}: size after writing`);
        if (index < sessions.length - 1) {
          await writer.close();
          assert.equal(writer.size, expectedSize, `session ${index}: size after close`);
        } else {
          await writer.commit();
        }
      }
      assertSameBytes(await driver.getContent(path), full, "committed content");
      assert.equal((await driver.stat(path)).size, full.length, "stat size");
      let boundary = 0;
      for (const session of sessions.slice(0, -1)) {
        boundary += session.length;
        assertSameBytes(
          await readAll(await driver.reader(path, boundary)),
          full.subarray(boundary),
          `reader at the session boundary ${boundary}`,
        );
      }
      await rejectsWith(
        driver,
        driver.writer(path, true),
        { code: PathNotFound, path },
        "resume after commit",
      );
    }

    test("a writer closed and resumed in several sessions of 32 bytes commits the exact content", (s) =>
      appendInSessions(s, [32, 32, 32]));

    test("a writer closed and resumed in several multi-MiB sessions commits the exact content", (s) =>
      appendInSessions(s, [5 * MiB + 1, 3 * MiB - 1, 7 * MiB + 3]));

    test("a writer resumed with nothing written in a session keeps its size", (s) =>
      appendInSessions(s, [100, 0, 0, 50]));

    test("cancel leaves nothing behind", async (s) => {
      const path = s.path("dir", "file");
      const writer = await driver.writer(path, false);
      await writer.write(randomContent(1000));
      await writer.cancel();
      await expectNothingAt(s, path);
    });

    test("cancelling a resumed writer discards the earlier sessions too", async (s) => {
      const path = s.path("dir", "file");
      const first = await driver.writer(path, false);
      await first.write(randomContent(1000));
      await first.close();
      const resumed = await driver.writer(path, true);
      assert.equal(resumed.size, 1000);
      await resumed.write(randomContent(500));
      await resumed.cancel();
      await expectNothingAt(s, path);
    });

    async function expectNothingAt(s: Scope, path: string): Promise<void> {
      await rejectsWith(
        driver,
        driver.getContent(path),
        { code: PathNotFound, path },
        "getContent",
      );
      await rejectsWith(driver, driver.stat(path), { code: PathNotFound, path }, "stat");
      await rejectsWith(
        driver,
        driver.writer(path, true),
        { code: PathNotFound, path },
        "writer(append)",
      );
      await rejectsWith(
        driver,
        driver.list(s.root),
        { code: PathNotFound, path: s.root },
        "list of the test directory",
      );
    }

    test("before commit a path shows nothing, its old content, or a prefix of what was written", async (s) => {
      const fresh = s.path("fresh");
      const first = randomContent(100);
      const second = randomContent(100);
      const writer = await driver.writer(fresh, false);
      await writer.write(first);
      await expectOldOrPrefix(fresh, undefined, first, "while writing");
      await writer.close();
      await expectOldOrPrefix(fresh, undefined, first, "after close");
      const resumed = await driver.writer(fresh, true);
      await resumed.write(second);
      await expectOldOrPrefix(fresh, undefined, Buffer.concat([first, second]), "after resuming");
      await resumed.commit();
      assertSameBytes(await driver.getContent(fresh), Buffer.concat([first, second]), "committed");

      const existing = s.path("existing");
      const old = randomContent(300);
      await driver.putContent(existing, old);
      const replacing = await driver.writer(existing, false);
      const replacement = randomContent(100);
      await replacing.write(replacement);
      await expectOldOrPrefix(existing, old, replacement, "while replacing");
      await replacing.commit();
      assertSameBytes(await driver.getContent(existing), replacement, "replaced");
    });

    async function expectOldOrPrefix(
      path: string,
      old: Buffer | undefined,
      written: Buffer,
      when: string,
    ): Promise<void> {
      let seen: Uint8Array;
      try {
        seen = await driver.getContent(path);
      } catch (error) {
        assert.equal((error as { code?: string }).code, PathNotFound, `${when}: ${String(error)}`);
        assert.equal(old, undefined, `${when}: the old content vanished before commit`);
        return;
      }
      const bytes = Buffer.from(seen);
      if (old !== undefined && bytes.equals(old)) return;
      assert.ok(
        bytes.length <= written.length && bytes.equals(written.subarray(0, bytes.length)),
        `${when}: ${path} shows ${bytes.length} bytes that are neither its old content nor what was written`,
      );
    }

    test("a writer rejects every call after close, cancel or commit", async (s) => {
      for (const ending of ["close", "cancel", "commit"] as const) {
        const path = s.path(ending);
        const writer = await driver.writer(path, false);
        await writer.write(randomContent(10));
        await writer[ending]();
        const what = `after ${ending}`;
        await rejectsWith(
          driver,
          writer.write(randomContent(1)),
          { code: WriterClosed, path },
          `${what}: write`,
        );
        await rejectsWith(driver, writer.close(), { code: WriterClosed, path }, `${what}: close`);
        await rejectsWith(driver, writer.cancel(), { code: WriterClosed, path }, `${what}: cancel`);
        await rejectsWith(driver, writer.commit(), { code: WriterClosed, path }, `${what}: commit`);
      }
      assert.equal((await driver.getContent(s.path("commit"))).length, 10, "the committed one");
      await rejectsWith(
        driver,
        driver.getContent(s.path("cancel")),
        { code: PathNotFound },
        "the cancelled one",
      );
    });

    test("writer(path, true) rejects when no closed writer is there to resume", async (s) => {
      const never = s.path("never");
      await rejectsWith(
        driver,
        driver.writer(never, true),
        { code: PathNotFound, path: never },
        "never written",
      );
      const put = s.path("put");
      await driver.putContent(put, randomContent(10));
      await rejectsWith(
        driver,
        driver.writer(put, true),
        { code: PathNotFound, path: put },
        "only putContent",
      );
      const cancelled = s.path("cancelled");
      const writer = await driver.writer(cancelled, false);
      await writer.write(randomContent(10));
      await writer.close();
      const resumed = await driver.writer(cancelled, true);
      await resumed.cancel();
      await rejectsWith(
        driver,
        driver.writer(cancelled, true),
        { code: PathNotFound, path: cancelled },
        "cancelled",
      );
    });

    test("writer(path, false) discards what a closed writer kept", async (s) => {
      const path = s.path("file");
      const first = await driver.writer(path, false);
      await first.write(randomContent(100));
      await first.close();
      const fresh = await driver.writer(path, false);
      assert.equal(fresh.size, 0);
      const content = randomContent(40);
      await fresh.write(content);
      await fresh.commit();
      assertSameBytes(await driver.getContent(path), content, "content");
      await rejectsWith(driver, driver.writer(path, true), { code: PathNotFound, path }, "resume");
    });

    test("a writer with nothing written commits an empty file", async (s) => {
      const path = s.path("a", "b", "empty");
      const writer = await driver.writer(path, false);
      await writer.commit();
      assert.equal((await driver.getContent(path)).length, 0);
      const info = await driver.stat(path);
      assert.equal(info.size, 0);
      assert.equal(info.isDir, false);
    });

    // ---- list ----

    test("list gives the full paths of the direct children only", async (s) => {
      const dir = s.path(randomName());
      const children: string[] = [];
      for (let i = 0; i < 20; i++) {
        const child = `${dir}/${randomName(8 + (i % 8))}`;
        children.push(child);
        await driver.putContent(child, randomContent(32));
      }
      const sub = `${dir}/sub`;
      await driver.putContent(`${sub}/deeper/file`, randomContent(8));
      children.push(sub);

      assert.deepEqual(await driver.list(s.root), [dir]);
      assert.deepEqual((await driver.list(dir)).sort(), children.sort());
      assert.deepEqual(await driver.list(sub), [`${sub}/deeper`]);
      assert.deepEqual(await driver.list(`${sub}/deeper`), [`${sub}/deeper/file`]);
      const top = await driver.list("/");
      assert.ok(top.includes(s.root), "list(/) includes the test directory");
      for (const path of top)
        assert.ok(isValidPath(path) && path.lastIndexOf("/") === 0, `list(/) gave ${path}`);
      const missing = `${dir}/nonexistent`;
      await rejectsWith(
        driver,
        driver.list(missing),
        { code: PathNotFound, path: missing },
        "list of a missing path",
      );
      // A file is there but has no children: it lists as empty, as in the inmemory reference.
      const file = `${sub}/deeper/file`;
      assert.deepEqual(await driver.list(file), [], "list of a file");
      const belowFile: string[] = [];
      await driver.walk(file, (info) => void belowFile.push(info.path));
      assert.deepEqual(belowFile, [], "walk of a file");
    });

    // ---- move ----

    test("move puts the content at a path in new directories and removes the source", async (s) => {
      const source = s.path("source", "file");
      const dest = s.path("x", "y", "z");
      const content = randomContent(32);
      await driver.putContent(source, content);
      await driver.move(source, dest);
      assertSameBytes(await driver.getContent(dest), content, "destination");
      assert.equal((await driver.stat(dest)).size, 32);
      await rejectsWith(
        driver,
        driver.getContent(source),
        { code: PathNotFound, path: source },
        "source",
      );
      assert.deepEqual(
        await driver.list(s.root),
        [s.path("x")],
        "the emptied source directory is gone",
      );
    });

    test("move replaces the destination", async (s) => {
      const source = s.path("source");
      const dest = s.path("dest");
      const content = randomContent(32);
      await driver.putContent(source, content);
      await driver.putContent(dest, randomContent(64));
      await driver.move(source, dest);
      assertSameBytes(await driver.getContent(dest), content, "destination");
      assert.equal((await driver.stat(dest)).size, 32);
      await rejectsWith(
        driver,
        driver.getContent(source),
        { code: PathNotFound, path: source },
        "source",
      );
    });

    test("move of a missing source rejects and leaves the destination alone", async (s) => {
      const source = s.path("missing");
      const dest = s.path("dest");
      const content = randomContent(32);
      await driver.putContent(dest, content);
      await rejectsWith(
        driver,
        driver.move(source, dest),
        { code: PathNotFound, path: source },
        "move",
      );
      assertSameBytes(await driver.getContent(dest), content, "destination");
      const underFile = `${dest}/foo`;
      await rejectsWith(
        driver,
        driver.move(underFile, `${dest}/bar`),
        { code: PathNotFound, path: underFile },
        "move from below a file",
      );
      assertSameBytes(await driver.getContent(dest), content, "the file is untouched");
    });

    // ---- delete ----

    test("delete removes one file and leaves its siblings", async (s) => {
      const dir = s.path("dir");
      const [a, b, c] = [`${dir}/a`, `${dir}/b`, `${dir}/c`];
      for (const path of [a, b, c]) await driver.putContent(path, randomContent(32));
      await driver.delete(a);
      await rejectsWith(
        driver,
        driver.getContent(a),
        { code: PathNotFound, path: a },
        "deleted file",
      );
      assert.equal((await driver.getContent(b)).length, 32);
      assert.equal((await driver.getContent(c)).length, 32);
      assert.deepEqual((await driver.list(dir)).sort(), [b, c]);
    });

    test("delete of a directory is recursive", async (s) => {
      const dir = s.path("dir");
      const files = [`${dir}/a`, `${dir}/b/c`, `${dir}/b/d/e`, `${dir}/f/g`];
      for (const path of files) await driver.putContent(path, randomContent(16));
      const kept = s.path("kept");
      await driver.putContent(kept, randomContent(16));
      await driver.delete(dir);
      for (const path of files) {
        await rejectsWith(
          driver,
          driver.getContent(path),
          { code: PathNotFound, path },
          "below the deleted directory",
        );
      }
      await rejectsWith(
        driver,
        driver.stat(dir),
        { code: PathNotFound, path: dir },
        "stat of the deleted directory",
      );
      assert.deepEqual(await driver.list(s.root), [kept]);
    });

    test("delete of /a leaves /ab alone", async (s) => {
      const dir = s.path("d");
      const file = `${dir}/f`;
      const fileSuffix = `${dir}/fsuffix`;
      const nested = `${dir}/d/f`;
      const nestedSuffix = `${dir}/dsuffix/f`;
      for (const path of [file, fileSuffix, nested, nestedSuffix])
        await driver.putContent(path, randomContent(8));
      await driver.delete(file);
      await rejectsWith(
        driver,
        driver.getContent(file),
        { code: PathNotFound, path: file },
        "deleted",
      );
      assert.equal((await driver.getContent(fileSuffix)).length, 8, "the file with a longer name");
      await driver.delete(`${dir}/d`);
      await rejectsWith(
        driver,
        driver.getContent(nested),
        { code: PathNotFound, path: nested },
        "deleted",
      );
      assert.equal(
        (await driver.getContent(nestedSuffix)).length,
        8,
        "the directory with a longer name",
      );
    });

    test("delete of a missing path rejects; deleting the last file empties its directories", async (s) => {
      const missing = s.path("missing");
      await rejectsWith(
        driver,
        driver.delete(missing),
        { code: PathNotFound, path: missing },
        "delete",
      );
      const file = s.path("a", "b", "file");
      await driver.putContent(file, randomContent(8));
      await driver.delete(file);
      await rejectsWith(
        driver,
        driver.delete(file),
        { code: PathNotFound, path: file },
        "deleted twice",
      );
      const dir = s.path("a");
      await rejectsWith(
        driver,
        driver.stat(dir),
        { code: PathNotFound, path: dir },
        "stat of the emptied directory",
      );
      await rejectsWith(
        driver,
        driver.list(dir),
        { code: PathNotFound, path: dir },
        "list of the emptied directory",
      );
    });

    // ---- stat ----

    test("stat describes files and directories", async (s) => {
      const dir = s.path("dir", "sub");
      const file = `${dir}/file`;
      await rejectsWith(
        driver,
        driver.stat(dir),
        { code: PathNotFound, path: dir },
        "stat before writing",
      );
      await rejectsWith(
        driver,
        driver.stat(file),
        { code: PathNotFound, path: file },
        "stat before writing",
      );
      const before = Date.now();
      await driver.putContent(file, randomContent(4096));
      const after = Date.now();

      const info = await driver.stat(file);
      assert.equal(info.path, file);
      assert.equal(info.size, 4096);
      assert.equal(info.isDir, false);
      assert.ok(info.modTime instanceof Date, "modTime is a Date");
      // Generous bounds: a remote backend's clock and its whole-second times may differ a little.
      const skew = 60_000;
      assert.ok(
        info.modTime.getTime() >= before - skew && info.modTime.getTime() <= after + skew,
        `modTime ${info.modTime.toISOString()} is not near the time of writing`,
      );

      for (const path of [dir, s.path("dir"), s.root]) {
        const dirInfo = await driver.stat(path);
        assert.equal(dirInfo.path, path);
        assert.equal(dirInfo.isDir, true, `${path} is a directory`);
        assert.equal(dirInfo.size, 0, `${path} has size 0`);
        assert.ok(dirInfo.modTime instanceof Date, "modTime is a Date");
      }
    });

    test("modTime moves forward when a file is rewritten", async (s) => {
      const path = s.path("file");
      await driver.putContent(path, randomContent(16));
      const first = (await driver.stat(path)).modTime;
      await sleep(modTimeResolutionMs + 100);
      await driver.putContent(path, randomContent(16));
      const second = (await driver.stat(path)).modTime;
      assert.ok(
        second > first,
        `after putContent: ${second.toISOString()} > ${first.toISOString()}`,
      );
      await sleep(modTimeResolutionMs + 100);
      const writer = await driver.writer(path, false);
      await writer.write(randomContent(16));
      await writer.commit();
      const third = (await driver.stat(path)).modTime;
      assert.ok(
        third > second,
        `after a writer's commit: ${third.toISOString()} > ${second.toISOString()}`,
      );
    });

    // ---- redirectURL ----

    test("redirectURL gives null or a URL that serves the content", async (s) => {
      const path = s.path("file");
      const content = randomContent(32);
      await driver.putContent(path, content);
      const url = await driver.redirectURL(path);
      if (url === null) return;
      assert.equal(typeof url, "string");
      const response = await fetch(url);
      assert.equal(response.status, 200, `GET ${url}`);
      assertSameBytes(new Uint8Array(await response.arrayBuffer()), content, "fetched content");

      const headURL = await driver.redirectURL(path, { method: "HEAD", expiresIn: 300 });
      assert.ok(typeof headURL === "string", "a driver giving GET URLs gives HEAD URLs too");
      const head = await fetch(headURL, { method: "HEAD" });
      assert.equal(head.status, 200, `HEAD ${headURL}`);
      assert.equal(head.headers.get("content-length"), "32");
    });

    // ---- walk ----

    /** A tree whose names sort differently by full path than by component: "b-x" < "b/c". */
    async function walkTree(s: Scope): Promise<{ expected: FileInfo[] }> {
      const files: [string, number][] = [
        ["A1", 1],
        ["a", 2],
        ["b/c", 3],
        ["b/d/e", 4],
        ["b-x", 5],
        ["b.y", 6],
        ["c", 7],
      ];
      for (const [name, size] of files) await driver.putContent(s.path(name), randomContent(size));
      const dir = (name: string): FileInfo => ({
        path: s.path(name),
        size: 0,
        modTime: new Date(0),
        isDir: true,
      });
      const file = (name: string, size: number): FileInfo => ({
        path: s.path(name),
        size,
        modTime: new Date(0),
        isDir: false,
      });
      return {
        expected: [
          file("A1", 1),
          file("a", 2),
          dir("b"),
          file("b/c", 3),
          dir("b/d"),
          file("b/d/e", 4),
          file("b-x", 5),
          file("b.y", 6),
          file("c", 7),
        ],
      };
    }

    async function walked(
      path: string,
      steer: (info: FileInfo) => WalkAction | void = () => {},
    ): Promise<FileInfo[]> {
      const seen: FileInfo[] = [];
      await driver.walk(path, async (info) => {
        seen.push(info);
        return steer(info);
      });
      return seen;
    }

    function assertWalk(actual: FileInfo[], expected: FileInfo[], what: string): void {
      assert.deepEqual(
        actual.map((info) => info.path),
        expected.map((info) => info.path),
        `${what}: paths in order`,
      );
      for (const [index, info] of actual.entries()) {
        const want = expected[index]!;
        assert.equal(info.isDir, want.isDir, `${what}: ${info.path} isDir`);
        if (!want.isDir) assert.equal(info.size, want.size, `${what}: ${info.path} size`);
        assert.ok(info.modTime instanceof Date, `${what}: ${info.path} modTime`);
      }
    }

    test("walk visits depth first, the children of each directory in lexical order", async (s) => {
      const { expected } = await walkTree(s);
      assertWalk(await walked(s.root), expected, "walk of the test directory");
      const b = s.path("b");
      assertWalk(
        await walked(b),
        expected.filter((info) => info.path.startsWith(`${b}/`)),
        "walk of a subdirectory",
      );
      const fromRoot: string[] = [];
      await driver.walk("/", (info) => {
        if (info.path === s.root || info.path.startsWith(`${s.root}/`)) fromRoot.push(info.path);
        // Other top-level directories of a shared backend are not this test's business.
        if (info.isDir && info.path.lastIndexOf("/") === 0 && info.path !== s.root) return "skip";
      });
      assert.deepEqual(fromRoot, [s.root, ...expected.map((info) => info.path)], "walk of /");
    });

    test("walk does not descend into a directory its callback skips", async (s) => {
      const { expected } = await walkTree(s);
      const b = s.path("b");
      const seen = await walked(s.root, (info) => (info.path === b ? "skip" : "continue"));
      assertWalk(
        seen,
        expected.filter((info) => !info.path.startsWith(`${b}/`)),
        "skipping b",
      );
    });

    test("walk skips the rest of a directory when its callback skips a file", async (s) => {
      const { expected } = await walkTree(s);
      const skipAt = s.path("b/c");
      const seen = await walked(s.root, (info) => (info.path === skipAt ? "skip" : undefined));
      const skipped = new Set([s.path("b/d"), s.path("b/d/e")]);
      assertWalk(
        seen,
        expected.filter((info) => !skipped.has(info.path)),
        "skipping at b/c",
      );
    });

    test("walk ends when its callback says stop", async (s) => {
      const { expected } = await walkTree(s);
      const stopAt = s.path("b/d");
      const seen = await walked(s.root, (info) => (info.path === stopAt ? "stop" : "continue"));
      const end = expected.findIndex((info) => info.path === stopAt);
      assertWalk(seen, expected.slice(0, end + 1), "stopping at b/d");
    });

    // ---- concurrency ----

    test("32 writers to different paths at once each commit their own content", async (s) => {
      const contents = Array.from({ length: 32 }, () => randomContent(256 * 1024));
      await Promise.all(
        contents.map(async (content, index) => {
          const writer = await driver.writer(s.path(`w${index}`, "data"), false);
          for (let at = 0; at < content.length; at += 16 * 1024) {
            await writer.write(content.subarray(at, at + 16 * 1024));
          }
          await writer.commit();
        }),
      );
      for (const [index, content] of contents.entries()) {
        assertSameBytes(
          await driver.getContent(s.path(`w${index}`, "data")),
          content,
          `writer ${index}`,
        );
      }
    });

    test("32 readers of one path at once each read the right bytes", async (s) => {
      const path = s.path("shared");
      const content = randomContent(4 * MiB);
      await driver.putContent(path, content);
      const offsets = Array.from({ length: 32 }, (_, index) =>
        index === 0 ? 0 : index === 1 ? content.length : Math.floor(Math.random() * content.length),
      );
      const results = await Promise.all(
        offsets.map(async (offset) => readAll(await driver.reader(path, offset))),
      );
      for (const [index, result] of results.entries()) {
        assertSameBytes(result, content.subarray(offsets[index]), `reader at ${offsets[index]}`);
      }
    });

    test("concurrent putContent and getContent of one path see whole versions only", async (s) => {
      const path = s.path("contended");
      const versions = Array.from({ length: 9 }, () => randomContent(256 * 1024));
      await driver.putContent(path, versions[0]!);
      const reads: Promise<Uint8Array>[] = [];
      const writes = versions.slice(1).map((version) => {
        reads.push(driver.getContent(path), driver.getContent(path));
        return driver.putContent(path, version);
      });
      await Promise.all(writes);
      for (const read of await Promise.all(reads)) {
        const bytes = Buffer.from(read);
        assert.ok(
          versions.some((version) => version.equals(bytes)),
          `a read during the puts gave ${bytes.length} bytes that are none of the versions`,
        );
      }
      const final = Buffer.from(await driver.getContent(path));
      assert.ok(
        versions.slice(1).some((version) => version.equals(final)),
        "the final content is one of the puts",
      );
    });
  });
}

/** One test's own directory below the root, and what it takes to remove it. */
class Scope {
  readonly root = `/suite-${randomName(16)}`;

  constructor(private readonly driver: StorageDriver) {}

  /** A path below this test's directory; `names` may hold `/`. */
  path(...names: string[]): string {
    return [this.root, ...names].join("/");
  }

  /** Deletes the test's directory; nothing being there is fine. */
  async remove(): Promise<void> {
    try {
      await this.driver.delete(this.root);
    } catch (error) {
      if ((error as { code?: string }).code !== PathNotFound) throw error;
    }
  }
}
