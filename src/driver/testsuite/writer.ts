// The shared driver suite, writers: resumable sessions, cancel, what a path shows before commit,
// calls after the end.

import assert from "node:assert/strict";
import { DriverErrorCode } from "../driver.js";
import { buffer } from "node:stream/consumers";
import type { Scope, Suite } from "./context.js";
import { assertSameBytes, randomContent, rejectsWith } from "./support.js";

const MiB = 1024 * 1024;
const { InvalidPath, PathNotFound, WriterClosed } = DriverErrorCode;

export function writerTests(suite: Suite): void {
  const { test } = suite;

  async function appendInSessions(s: Scope, sessionSizes: number[]): Promise<void> {
    const path = s.path("upload", "data");
    const sessions = sessionSizes.map((size) => randomContent(size));
    const full = Buffer.concat(sessions);
    let expectedSize = 0;
    for (const [index, session] of sessions.entries()) {
      const writer = await suite.driver.writer(path, index > 0);
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
    assertSameBytes(await suite.driver.getContent(path), full, "committed content");
    assert.equal((await suite.driver.stat(path)).size, full.length, "stat size");
    let boundary = 0;
    for (const session of sessions.slice(0, -1)) {
      boundary += session.length;
      assertSameBytes(
        await buffer(await suite.driver.reader(path, boundary)),
        full.subarray(boundary),
        `reader at the session boundary ${boundary}`,
      );
    }
    await rejectsWith(
      suite.driver,
      suite.driver.writer(path, true),
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

  test("an append with newIfMissing resumes what was closed, and where nothing was written starts empty or finds nothing", async (s) => {
    const missing = s.path("never", "data");
    let fresh;
    try {
      fresh = await suite.driver.writer(missing, true, { newIfMissing: true });
    } catch (error) {
      // A driver may ignore the option: then it is PathNotFound, as without it.
      assert.equal((error as { code?: unknown }).code, PathNotFound, String(error));
    }
    if (fresh !== undefined) {
      assert.equal(fresh.size, 0, "a writer where nothing was written starts empty");
      await fresh.write(Buffer.from("new"));
      await fresh.commit();
      assertSameBytes(await suite.driver.getContent(missing), Buffer.from("new"), "its content");
    }
    // What a writer closed is resumed, never started again.
    const path = s.path("closed", "data");
    const first = await suite.driver.writer(path, false);
    const bytes = randomContent(300);
    await first.write(bytes.subarray(0, 200));
    await first.close();
    const resumed = await suite.driver.writer(path, true, { newIfMissing: true });
    assert.equal(resumed.size, 200, "resumed at the closed writer's size");
    await resumed.write(bytes.subarray(200));
    await resumed.commit();
    assertSameBytes(await suite.driver.getContent(path), bytes, "the whole content");
  });

  test("cancel leaves nothing behind", async (s) => {
    const path = s.path("dir", "file");
    const writer = await suite.driver.writer(path, false);
    await writer.write(randomContent(1000));
    await writer.cancel();
    await expectNothingAt(s, path);
  });

  test("cancelling a resumed writer discards the earlier sessions too", async (s) => {
    const path = s.path("dir", "file");
    const first = await suite.driver.writer(path, false);
    await first.write(randomContent(1000));
    await first.close();
    const resumed = await suite.driver.writer(path, true);
    assert.equal(resumed.size, 1000);
    await resumed.write(randomContent(500));
    await resumed.cancel();
    await expectNothingAt(s, path);
  });

  async function expectNothingAt(s: Scope, path: string): Promise<void> {
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(path),
      { code: PathNotFound, path },
      "getContent",
    );
    await rejectsWith(suite.driver, suite.driver.stat(path), { code: PathNotFound, path }, "stat");
    await rejectsWith(
      suite.driver,
      suite.driver.writer(path, true),
      { code: PathNotFound, path },
      "writer(append)",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.list(s.root),
      { code: PathNotFound, path: s.root },
      "list of the test directory",
    );
  }

  test("before commit a path shows nothing, its old content, or a prefix of what was written", async (s) => {
    const fresh = s.path("fresh");
    const first = randomContent(100);
    const second = randomContent(100);
    const writer = await suite.driver.writer(fresh, false);
    await writer.write(first);
    await expectOldOrPrefix(fresh, undefined, first, "while writing");
    await writer.close();
    await expectOldOrPrefix(fresh, undefined, first, "after close");
    const resumed = await suite.driver.writer(fresh, true);
    await resumed.write(second);
    await expectOldOrPrefix(fresh, undefined, Buffer.concat([first, second]), "after resuming");
    await resumed.commit();
    assertSameBytes(
      await suite.driver.getContent(fresh),
      Buffer.concat([first, second]),
      "committed",
    );

    const existing = s.path("existing");
    const old = randomContent(300);
    await suite.driver.putContent(existing, old);
    const replacing = await suite.driver.writer(existing, false);
    const replacement = randomContent(100);
    await replacing.write(replacement);
    await expectOldOrPrefix(existing, old, replacement, "while replacing");
    await replacing.commit();
    assertSameBytes(await suite.driver.getContent(existing), replacement, "replaced");
  });

  async function expectOldOrPrefix(
    path: string,
    old: Buffer | undefined,
    written: Buffer,
    when: string,
  ): Promise<void> {
    let seen: Uint8Array;
    try {
      seen = await suite.driver.getContent(path);
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
      const writer = await suite.driver.writer(path, false);
      await writer.write(randomContent(10));
      await writer[ending]();
      const what = `after ${ending}`;
      await rejectsWith(
        suite.driver,
        writer.write(randomContent(1)),
        { code: WriterClosed, path },
        `${what}: write`,
      );
      await rejectsWith(
        suite.driver,
        writer.close(),
        { code: WriterClosed, path },
        `${what}: close`,
      );
      await rejectsWith(
        suite.driver,
        writer.cancel(),
        { code: WriterClosed, path },
        `${what}: cancel`,
      );
      await rejectsWith(
        suite.driver,
        writer.commit(),
        { code: WriterClosed, path },
        `${what}: commit`,
      );
    }
    assert.equal((await suite.driver.getContent(s.path("commit"))).length, 10, "the committed one");
    await rejectsWith(
      suite.driver,
      suite.driver.getContent(s.path("cancel")),
      { code: PathNotFound },
      "the cancelled one",
    );
  });

  test("writer(path, true) rejects when no closed writer is there to resume", async (s) => {
    const never = s.path("never");
    await rejectsWith(
      suite.driver,
      suite.driver.writer(never, true),
      { code: PathNotFound, path: never },
      "never written",
    );
    const put = s.path("put");
    await suite.driver.putContent(put, randomContent(10));
    await rejectsWith(
      suite.driver,
      suite.driver.writer(put, true),
      { code: PathNotFound, path: put },
      "only putContent",
    );
    const cancelled = s.path("cancelled");
    const writer = await suite.driver.writer(cancelled, false);
    await writer.write(randomContent(10));
    await writer.close();
    const resumed = await suite.driver.writer(cancelled, true);
    await resumed.cancel();
    await rejectsWith(
      suite.driver,
      suite.driver.writer(cancelled, true),
      { code: PathNotFound, path: cancelled },
      "cancelled",
    );
  });

  test("writer(path, false) discards what a closed writer kept", async (s) => {
    const path = s.path("file");
    const first = await suite.driver.writer(path, false);
    await first.write(randomContent(100));
    await first.close();
    const fresh = await suite.driver.writer(path, false);
    assert.equal(fresh.size, 0);
    const content = randomContent(40);
    await fresh.write(content);
    await fresh.commit();
    assertSameBytes(await suite.driver.getContent(path), content, "content");
    await rejectsWith(
      suite.driver,
      suite.driver.writer(path, true),
      { code: PathNotFound, path },
      "resume",
    );
  });

  test("commitTo publishes a resumed writer's whole content at another path (when offered)", async (s) => {
    const path = s.path("upload", "data");
    const destination = s.path("blobs", "ab", "data");
    const first = randomContent(100);
    const rest = randomContent(5000);
    const writer = await suite.driver.writer(path, false);
    await writer.write(first);
    await writer.close();
    const resumed = await suite.driver.writer(path, true);
    if (resumed.commitTo === undefined) {
      await resumed.cancel();
      return;
    }
    await resumed.write(rest);
    await rejectsWith(
      suite.driver,
      resumed.commitTo("/not/../valid"),
      { code: InvalidPath },
      "an invalid destination",
    );
    await suite.driver.putContent(destination, randomContent(10));
    await resumed.commitTo(destination);
    assertSameBytes(
      await suite.driver.getContent(destination),
      Buffer.concat([first, rest]),
      "content at the destination",
    );
    // Nothing is left at the writer's path, to read or to resume.
    const left = {
      stat: () => suite.driver.stat(path),
      resume: () => suite.driver.writer(path, true),
    };
    for (const [what, call] of Object.entries(left)) {
      await rejectsWith(suite.driver, call(), { code: PathNotFound, path }, what);
    }
    await rejectsWith(suite.driver, resumed.write(rest), { code: WriterClosed }, "write after");
  });

  test("a writer with nothing written commits an empty file", async (s) => {
    const path = s.path("a", "b", "empty");
    const writer = await suite.driver.writer(path, false);
    await writer.commit();
    assert.equal((await suite.driver.getContent(path)).length, 0);
    const info = await suite.driver.stat(path);
    assert.equal(info.size, 0);
    assert.equal(info.isDir, false);
  });
}
