// The filesystem driver runs the shared driver suite, then what only a file system has: the root
// directory parameter, writers resumed by another driver instance (a restart), the driver's own
// hidden files, the on-disk layout, and paths that try to leave the root.

import assert from "node:assert/strict";
import { existsSync, watch } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { DriverErrorCode, type FileWriter, type StorageDriver } from "../driver.js";
import { createDriver } from "../factory.js";
import { runDriverSuite } from "../testsuite/index.js";
import { FilesystemDriver } from "./index.js";

let scratch: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "berth-filesystem-"));
});

after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

// Modification times have nanosecond steps; 20 ms is above any file system's coarsest tick here.
runDriverSuite(
  "filesystem",
  () => createDriver("filesystem", { rootdirectory: join(scratch, "suite", "root") }),
  { modTimeResolutionMs: 20 },
);

/** A fresh directory below the scratch directory. */
async function freshDirectory(): Promise<string> {
  return mkdtemp(join(scratch, "case-"));
}

/** Every file below `dir`, relative to it, sorted. */
async function filesOnDisk(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath ?? entry.path, entry.name)))
    .sort();
}

async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<unknown> {
  let error: unknown;
  await promise.catch((caught) => {
    error = caught;
  });
  assert.equal((error as { code?: string } | undefined)?.code, code, String(error));
  return error;
}

describe("filesystem driver", () => {
  describe("rootdirectory", () => {
    it("is required", async () => {
      for (const parameters of [{}, { rootdirectory: "" }, { rootdirectory: null }]) {
        const error = await rejectsWithCode(
          createDriver("filesystem", parameters),
          DriverErrorCode.InvalidParameter,
        );
        assert.equal((error as { parameter?: string }).parameter, "rootdirectory");
      }
    });

    it("must be a string", async () => {
      await rejectsWithCode(
        createDriver("filesystem", { rootdirectory: ["/tmp"] }),
        DriverErrorCode.InvalidParameter,
      );
    });

    it("is created when missing, and may be relative to the working directory", async () => {
      const dir = await freshDirectory();
      const nested = join(dir, "a", "b", "root");
      const driver = await createDriver("filesystem", {
        rootdirectory: relative(process.cwd(), nested),
      });
      await driver.putContent("/file", Buffer.from("x"));
      assert.equal(await readFile(join(nested, "file"), "utf8"), "x");
    });

    it("naming a file, or a place where no directory can be made, is an error at creation", async () => {
      const dir = await freshDirectory();
      const file = join(dir, "file");
      await writeFile(file, "not a directory");
      for (const rootdirectory of [file, join(file, "below")]) {
        const error = await rejectsWithCode(
          createDriver("filesystem", { rootdirectory }),
          DriverErrorCode.InvalidParameter,
        );
        assert.match((error as Error).message, /rootdirectory/);
        assert.ok((error as Error).message.includes(rootdirectory), "the message names the value");
      }
    });
  });

  describe("on disk", () => {
    let root: string;
    let driver: StorageDriver;

    before(async () => {
      root = await freshDirectory();
      driver = await createDriver("filesystem", { rootdirectory: root });
    });

    it("stores a path as the file of the same name below the root, as distribution does", async () => {
      const path = "/docker/registry/v2/repositories/library/alpine/_manifests/tags/3/current/link";
      await driver.putContent(path, Buffer.from("sha256:abc"));
      assert.equal(await readFile(join(root, path), "utf8"), "sha256:abc");
      // And reads what another program put there.
      await writeFile(join(root, "docker", "written-by-hand"), "by hand");
      assert.equal(
        Buffer.from(await driver.getContent("/docker/written-by-hand")).toString(),
        "by hand",
      );
      await driver.delete("/docker");
      assert.deepEqual(await readdir(root), []);
    });

    it("putContentUnsynced and a commit with movedNext publish as putContent and commit do", async () => {
      const fs = driver as Required<StorageDriver>;
      const path = "/uploads/unsynced/startedat";
      await fs.putContentUnsynced(path, Buffer.from("2026-11-29T12:00:00Z"));
      await fs.putContentUnsynced(path, Buffer.from("2026-11-29T12:00:01Z"));
      assert.equal(await readFile(join(root, path), "utf8"), "2026-11-29T12:00:01Z");
      const writer = await driver.writer("/uploads/unsynced/data", false);
      await writer.write(Buffer.from("moved next"));
      await writer.commit({ movedNext: true });
      await driver.move("/uploads/unsynced/data", "/blobs/moved/data");
      assert.equal(await readFile(join(root, "blobs/moved/data"), "utf8"), "moved next");
      assert.deepEqual(await filesOnDisk(root), ["blobs/moved/data", "uploads/unsynced/startedat"]);
      await driver.delete("/uploads");
      await driver.delete("/blobs");
    });

    it("a closing writer's file stays live until it is renamed (a start-up sweep could cut it before)", async () => {
      const dir = await freshDirectory();
      const fs = new FilesystemDriver(dir);
      const released = fs.released.bind(fs);
      const stillThere: boolean[] = [];
      // Released means a restarted process's sweep may take the file for a crashed writer's.
      fs.released = (name: string) => {
        stillThere.push(existsSync(name));
        released(name);
      };
      const writer = await fs.writer("/uploads/c/data", false);
      await writer.write(Buffer.from("acknowledged by a 202"));
      await writer.close();
      assert.deepEqual(stillThere, [false]);
      const resumed = await fs.writer("/uploads/c/data", true);
      assert.equal(resumed.size, "acknowledged by a 202".length);
      await resumed.cancel();
    });

    it("a start-up sweep while a writer commits leaves its bytes alone (commitTo published an emptied blob before the fix)", async () => {
      const dir = await freshDirectory();
      const fs = new FilesystemDriver(dir);
      const publish = fs.publish.bind(fs);
      const publishAt = fs.publishAt.bind(fs);
      // Another driver instance's sweep (a restarted process's) runs just before the rename.
      const sweepFirst = async () => void (await new FilesystemDriver(dir).startSweep());
      fs.publish = async (...args) => (await sweepFirst(), publish(...args));
      fs.publishAt = async (...args) => (await sweepFirst(), publishAt(...args));
      for (const [path, commit] of [
        ["/uploads/a/data", (writer: FileWriter) => writer.commit()],
        ["/blobs/b/data", (writer: FileWriter) => writer.commitTo!("/blobs/b/data")],
      ] as const) {
        const writer = await fs.writer("/uploads/a/data", false);
        await writer.write(Buffer.from(`acknowledged ${path}`));
        await commit(writer);
        assert.equal(await readFile(join(dir, path), "utf8"), `acknowledged ${path}`);
      }
      assert.deepEqual(await filesOnDisk(dir), ["blobs/b/data", "uploads/a/data"]);
    });

    it("commitTo removes the directory it left empty (not its parent), and keeps one still used", async () => {
      const dir = await freshDirectory();
      const fs = new FilesystemDriver(dir);
      const alone = await fs.writer("/uploads/alone/data", false);
      await alone.write(Buffer.from("one"));
      await alone.commitTo!("/blobs/one/data");
      const shared = await fs.writer("/uploads/shared/data", false);
      await fs.putContent("/uploads/shared/startedat", Buffer.from("then"));
      await shared.write(Buffer.from("two"));
      await shared.commitTo!("/blobs/two/data");
      assert.deepEqual(await filesOnDisk(dir), [
        "blobs/one/data",
        "blobs/two/data",
        "uploads/shared/startedat",
      ]);
      assert.deepEqual((await readdir(join(dir, "uploads"))).sort(), ["shared"]);
      // The parent stays, emptied: the next upload would make it again.
      const last = await fs.writer("/uploads/last/data", false);
      await fs.delete("/uploads/shared/startedat");
      await last.commitTo!("/blobs/three/data");
      assert.deepEqual(await readdir(join(dir, "uploads")), []);
    });

    it("an append with newIfMissing starts where nothing was written and resumes what was closed", async () => {
      const dir = await freshDirectory();
      const fs = new FilesystemDriver(dir);
      // No directory: a new, empty writer at once.
      const first = await fs.writer("/uploads/new/data", true, { newIfMissing: true });
      assert.equal(first.size, 0);
      await first.write(Buffer.from("abc"));
      await first.close();
      // A closed writer: resumed with its bytes, not started again.
      const again = await fs.writer("/uploads/new/data", true, { newIfMissing: true });
      assert.equal(again.size, 3);
      await again.write(Buffer.from("de"));
      await again.commit();
      assert.equal(await readFile(join(dir, "uploads/new/data"), "utf8"), "abcde");
      // A directory holding something else but no writer: nothing to resume, as without the option.
      await fs.putContent("/uploads/other/startedat", Buffer.from("then"));
      await assert.rejects(fs.writer("/uploads/other/data", true, { newIfMissing: true }), {
        code: DriverErrorCode.PathNotFound,
      });
      // Without the option, a missing directory is still PathNotFound and nothing is made.
      await assert.rejects(fs.writer("/uploads/none/data", true), {
        code: DriverErrorCode.PathNotFound,
      });
      assert.equal(existsSync(join(dir, "uploads/none")), false);
    });

    it("commitToIfAbsent publishes a new file, and leaves a stored one as it was", async () => {
      const dir = await freshDirectory();
      const fs = new FilesystemDriver(dir);
      const first = await fs.writer("/uploads/a/data", false);
      await first.write(Buffer.from("same"));
      assert.equal(await first.commitToIfAbsent!("/blobs/x/data"), true);
      const stored = await stat(join(dir, "blobs/x/data"));
      const second = await fs.writer("/uploads/b/data", false);
      await second.write(Buffer.from("copy"));
      assert.equal(await second.commitToIfAbsent!("/blobs/x/data"), false);
      // The stored file is the first one (same inode, same bytes); the second writer left nothing.
      assert.equal((await stat(join(dir, "blobs/x/data"))).ino, stored.ino);
      assert.equal(await readFile(join(dir, "blobs/x/data"), "utf8"), "same");
      assert.deepEqual(await filesOnDisk(dir), ["blobs/x/data"]);
      await assert.rejects(second.write(Buffer.from("more")));
      // A directory at the destination is not a stored file: replaced, as commitTo does.
      await mkdir(join(dir, "blobs/y/data/inner"), { recursive: true });
      const third = await fs.writer("/uploads/c/data", false);
      await third.write(Buffer.from("y"));
      assert.equal(await third.commitToIfAbsent!("/blobs/y/data"), true);
      assert.equal(await readFile(join(dir, "blobs/y/data"), "utf8"), "y");
    });

    it("stageNear keeps a new writer's bytes where they are published, and at its path when closed", async () => {
      const dir = await freshDirectory();
      const fs = new FilesystemDriver(dir);
      const stage = { newIfMissing: true, stageNear: "/blobs/x/data" };
      // Published where it was written: the upload's directory is never made.
      const first = await fs.writer("/uploads/a/data", true, stage);
      await first.write(Buffer.from("same"));
      const [hidden] = await filesOnDisk(dir);
      assert.match(hidden!, /^blobs\/x\/data~tmp-/);
      assert.equal(await first.commitToIfAbsent!("/blobs/x/data"), true);
      assert.deepEqual(await filesOnDisk(dir), ["blobs/x/data"]);
      assert.equal(existsSync(join(dir, "uploads")), false);
      const stored = await stat(join(dir, "blobs/x/data"));
      // Stored already: that file stays (same inode, same bytes), the new bytes go.
      const second = await fs.writer("/uploads/b/data", true, stage);
      await second.write(Buffer.from("copy"));
      assert.equal(await second.commitToIfAbsent!("/blobs/x/data"), false);
      assert.equal((await stat(join(dir, "blobs/x/data"))).ino, stored.ino);
      assert.equal(await readFile(join(dir, "blobs/x/data"), "utf8"), "same");
      assert.deepEqual(await filesOnDisk(dir), ["blobs/x/data"]);
      // Closed (a body cut short): the bytes are the path's, resumable there; the staging
      // directory it made is gone.
      const cut = await fs.writer("/uploads/c/data", true, {
        ...stage,
        stageNear: "/blobs/y/data",
      });
      await cut.write(Buffer.from("abc"));
      await cut.close();
      assert.equal(existsSync(join(dir, "blobs/y")), false);
      const resumed = await fs.writer("/uploads/c/data", true, stage);
      assert.equal(resumed.size, 3);
      await resumed.write(Buffer.from("de"));
      await resumed.commit();
      assert.equal(await readFile(join(dir, "uploads/c/data"), "utf8"), "abcde");
      // Committed at its own path, or cancelled: nothing stays at the staging place.
      const own = await fs.writer("/uploads/d/data", true, {
        ...stage,
        stageNear: "/blobs/z/data",
      });
      await own.write(Buffer.from("own"));
      await own.commit();
      assert.equal(await readFile(join(dir, "uploads/d/data"), "utf8"), "own");
      const dropped = await fs.writer("/uploads/e/data", true, {
        ...stage,
        stageNear: "/blobs/z/data",
      });
      await dropped.write(Buffer.from("gone"));
      await dropped.cancel();
      assert.equal(existsSync(join(dir, "blobs/z")), false);
      assert.equal(existsSync(join(dir, "uploads/e")), false);
      // Something to resume at the path: resumed there, the hint unused.
      await fs.putContent("/uploads/f/startedat", Buffer.from("then"));
      const begun = await fs.writer("/uploads/f/data", false);
      await begun.write(Buffer.from("12"));
      await begun.close();
      const later = await fs.writer("/uploads/f/data", true, {
        ...stage,
        stageNear: "/blobs/w/data",
      });
      assert.equal(later.size, 2);
      await later.cancel();
      assert.equal(existsSync(join(dir, "blobs/w")), false);
      assert.deepEqual(await filesOnDisk(dir), [
        "blobs/x/data",
        "uploads/c/data",
        "uploads/d/data",
        "uploads/f/startedat",
      ]);
    });

    it("a staged writer (stageNear) abandoned by a crash is swept, with its directory", async () => {
      const dir = await freshDirectory();
      const fs = new FilesystemDriver(dir);
      const writer = await fs.writer("/uploads/a/data", true, {
        newIfMissing: true,
        stageNear: "/blobs/x/data",
      });
      await writer.write(Buffer.from("never acknowledged"));
      const [hidden] = await filesOnDisk(dir);
      // A process that died with it open: its file under a dead owner's name.
      const dead = hidden!.replace(
        /~tmp-([0-9a-f]{8})\.[0-9a-z]+\./,
        (_, host: string) => `~tmp-${host}.${(2 ** 22 + 1).toString(36)}.`,
      );
      await writeFile(join(dir, dead), "never acknowledged");
      await writer.cancel();
      assert.deepEqual(await filesOnDisk(dir), [dead]);
      const restarted = new FilesystemDriver(dir);
      const swept = await restarted.startSweep();
      assert.equal(swept.removed, 1);
      assert.deepEqual(await filesOnDisk(dir), []);
      assert.equal(existsSync(join(dir, "blobs/x")), false);
    });

    it("keeps a writer's bytes in hidden files, and leaves none after commit or cancel", async () => {
      const closed = await driver.writer("/uploads/one/data", false);
      await closed.write(Buffer.from("first"));
      await closed.close();
      const open = await driver.writer("/uploads/two/data", false);
      await open.write(Buffer.from("second"));

      const hidden = await filesOnDisk(root);
      assert.equal(hidden.length, 2, `two writer files: ${hidden.join(", ")}`);
      assert.ok(
        hidden.every((name) => name.includes("~")),
        "their names cannot be storage paths",
      );
      await rejectsWithCode(driver.list("/uploads"), DriverErrorCode.PathNotFound);
      await rejectsWithCode(driver.stat("/uploads/one"), DriverErrorCode.PathNotFound);
      await rejectsWithCode(driver.reader("/uploads/one/data", 0), DriverErrorCode.PathNotFound);
      const walked: string[] = [];
      await driver.walk("/", (info) => void walked.push(info.path));
      assert.deepEqual(walked, []);

      const resumed = await driver.writer("/uploads/one/data", true);
      await resumed.write(Buffer.from("+more"));
      await resumed.commit();
      await open.cancel();
      assert.deepEqual(await filesOnDisk(root), ["uploads/one/data"]);
      assert.deepEqual(
        await readdir(join(root, "uploads")),
        ["one"],
        "the cancelled writer's directory is gone",
      );
      assert.equal(
        Buffer.from(await driver.getContent("/uploads/one/data")).toString(),
        "first+more",
      );
      await driver.delete("/uploads");
    });

    it("hides files a crash left behind", async () => {
      await mkdir(join(root, "crashed", "dir"), { recursive: true });
      await writeFile(join(root, "crashed", "dir", "data~tmp-0123456789ab"), "half");
      await writeFile(join(root, "crashed", "blob~open-0123456789ab"), "half");
      await rejectsWithCode(driver.stat("/crashed"), DriverErrorCode.PathNotFound);
      await rejectsWithCode(driver.list("/crashed"), DriverErrorCode.PathNotFound);
      await rejectsWithCode(
        driver.walk("/crashed", () => {}),
        DriverErrorCode.PathNotFound,
      );
      await rejectsWithCode(driver.writer("/crashed/blob", true), DriverErrorCode.PathNotFound);
      await driver.putContent("/crashed/dir/data", Buffer.from("whole"));
      assert.deepEqual(await driver.list("/crashed"), ["/crashed/dir"]);
      assert.deepEqual(await driver.list("/crashed/dir"), ["/crashed/dir/data"]);
      await driver.delete("/crashed");
      assert.deepEqual(await readdir(root), []);
    });

    it("deleting a directory that holds only a writer's files removes them, yet finds nothing", async () => {
      const writer = await driver.writer("/pending/data", false);
      await writer.write(Buffer.from("kept"));
      await writer.close();
      await rejectsWithCode(driver.delete("/pending"), DriverErrorCode.PathNotFound);
      assert.deepEqual(await readdir(root), []);
      await rejectsWithCode(driver.writer("/pending/data", true), DriverErrorCode.PathNotFound);
    });

    it("putContent below a file is a backend failure naming the path", async () => {
      await driver.putContent("/plain", Buffer.from("file"));
      const error = await rejectsWithCode(
        driver.putContent("/plain/below", Buffer.from("x")),
        DriverErrorCode.Backend,
      );
      assert.equal((error as { path?: string }).path, "/plain/below");
      assert.equal(Buffer.from(await driver.getContent("/plain")).toString(), "file");
      await driver.delete("/plain");
    });

    it("writes into a directory that a concurrent delete empties and removes", async () => {
      for (let round = 0; round < 100; round++) {
        await driver.putContent("/race/old", Buffer.from("old"));
        const writer = driver.writer("/race/writer", false);
        await Promise.all([
          driver.delete("/race/old"),
          driver.putContent("/race/new", Buffer.from("new")),
          driver.move("/race/new", "/race/moved").catch((error: { code?: string }) => {
            // The move may run before the put it follows has published.
            assert.equal(error.code, DriverErrorCode.PathNotFound);
          }),
          writer,
        ]);
        await (await writer).commit();
        await driver.delete("/race");
      }
      assert.deepEqual(await readdir(root), []);
    });

    it("a putContent whose directory a concurrent delete removes stores its content all the same (a 500 before the fix)", async () => {
      // The interleaving the online collector met: a manifest PUT writes its revision link while
      // the sweep removes that revision's directory. The delete runs as soon as the put's
      // temporary file appears in the directory (inotify), while the put writes 4 MiB into it.
      const content = Buffer.alloc(4 * 1024 * 1024, 7);
      const dir = join(root, "gone", "revision");
      let interleaved = 0;
      for (let round = 0; round < 10; round++) {
        await driver.putContent("/gone/revision/other", Buffer.from("x"));
        let deleting: Promise<void> | undefined;
        const watcher = watch(dir, (_event, name) => {
          if (deleting !== undefined || !String(name).includes("~tmp-")) return;
          deleting = driver.delete("/gone/revision").then(
            () => void interleaved++,
            (error: { code?: string }) => assert.equal(error.code, DriverErrorCode.PathNotFound),
          );
        });
        try {
          await driver.putContent("/gone/revision/link", content);
        } finally {
          watcher.close();
        }
        await deleting;
        // The delete came first or second: the link is whole or absent, never half written.
        const stored = await driver.getContent("/gone/revision/link").catch(() => undefined);
        if (stored !== undefined) assert.ok(content.equals(Buffer.from(stored)));
        await driver.delete("/gone").catch(() => {});
      }
      assert.ok(interleaved > 0, "a delete ran while a put was writing");
      assert.deepEqual(await readdir(root), []);
    });

    it("moves into a directory that concurrent deletes keep emptying and removing (the sweep's trash)", async () => {
      // Each lane moves a file into /trash/sha256 and deletes it, which removes the directories
      // when they become empty: a move's mkdir -p could find an ancestor gone (ENOENT) before.
      const lanes = Array.from({ length: 8 }, async (_, lane) => {
        for (let round = 0; round < 40; round++) {
          const name = `${lane}-${round}`;
          await driver.putContent(`/blobs/${name}/data`, Buffer.from(name));
          await driver.move(`/blobs/${name}/data`, `/gc/trash/sha256/${name}`);
          await driver.delete(`/gc/trash/sha256/${name}`);
        }
      });
      await Promise.all(lanes);
      assert.deepEqual(await readdir(root), []);
    });

    it("move replaces a directory at the destination", async () => {
      await driver.putContent("/dest/inside", Buffer.from("old"));
      await driver.putContent("/source", Buffer.from("new"));
      await driver.move("/source", "/dest");
      assert.equal(Buffer.from(await driver.getContent("/dest")).toString(), "new");
      assert.equal((await driver.stat("/dest")).isDir, false);
      await driver.delete("/dest");
    });
  });

  it("resumes a closed writer in a new driver instance on the same root (a restart)", async () => {
    const root = await freshDirectory();
    const first = await createDriver("filesystem", { rootdirectory: root });
    const writer = await first.writer("/uploads/u1/data", false);
    await writer.write(Buffer.from("before restart, "));
    await writer.close();

    const second = await createDriver("filesystem", { rootdirectory: root });
    const resumed = await second.writer("/uploads/u1/data", true);
    assert.equal(resumed.size, 16);
    await resumed.write(Buffer.from("after"));
    assert.equal(resumed.size, 21);
    await resumed.commit();
    const content = Buffer.from(await first.getContent("/uploads/u1/data")).toString();
    assert.equal(content, "before restart, after");
  });

  it("putContent racing a delete of its directory succeeds (failed before the fix: a manifest PUT beside its DELETE answered 500)", async () => {
    const root = await freshDirectory();
    const driver = await createDriver("filesystem", { rootdirectory: root });
    const failures: string[] = [];
    for (let round = 0; round < 100; round++) {
      const tag = `/repo/_manifests/tags/t${round % 3}`;
      const results = await Promise.allSettled([
        driver.putContent(`${tag}/current/link`, Buffer.from(`link ${round}`)),
        driver.delete(tag).catch(() => undefined),
        driver.putContent(`${tag}/index/sha256/ab/link`, Buffer.from(`index ${round}`)),
      ]);
      for (const result of results)
        if (result.status === "rejected") failures.push(String(result.reason));
    }
    assert.deepEqual(failures.slice(0, 3), [], `${failures.length} of 200 writes failed`);
  });

  it("lets no path reach outside the root, even without the base wrapper", async () => {
    const dir = await freshDirectory();
    const root = join(dir, "root");
    await mkdir(root);
    await writeFile(join(dir, "secret"), "outside");
    const driver = new FilesystemDriver(root);
    const attempts = [
      "/../secret",
      "/a/../../secret",
      "/..",
      "../secret",
      "",
      "/",
      "/a/",
      "//secret",
    ];
    for (const path of attempts) {
      await rejectsWithCode(driver.getContent(path), DriverErrorCode.InvalidPath);
      await rejectsWithCode(driver.putContent(path, Buffer.from("x")), DriverErrorCode.InvalidPath);
      await rejectsWithCode(driver.reader(path, 0), DriverErrorCode.InvalidPath);
      await rejectsWithCode(driver.writer(path, false), DriverErrorCode.InvalidPath);
      await rejectsWithCode(driver.delete(path), DriverErrorCode.InvalidPath);
      await rejectsWithCode(driver.move(path, "/x"), DriverErrorCode.InvalidPath);
      await rejectsWithCode(driver.move("/x", path), DriverErrorCode.InvalidPath);
      if (path !== "/") {
        await rejectsWithCode(driver.stat(path), DriverErrorCode.InvalidPath);
        await rejectsWithCode(driver.list(path), DriverErrorCode.InvalidPath);
        await rejectsWithCode(
          driver.walk(path, () => {}),
          DriverErrorCode.InvalidPath,
        );
      }
    }
    assert.equal(await readFile(join(dir, "secret"), "utf8"), "outside");
    assert.deepEqual((await readdir(dir)).sort(), ["root", "secret"]);
    assert.deepEqual(await readdir(root), []);
  });

  it("refuses to follow a symbolic link planted in the root out of it, for every operation (followed before the fix)", async () => {
    const dir = await freshDirectory();
    const root = join(dir, "root");
    const outside = join(dir, "outside");
    await mkdir(join(root, "repos"), { recursive: true });
    await mkdir(outside);
    await writeFile(join(outside, "secret"), "outside");
    await writeFile(join(root, "repos", "own"), "inside");
    // A directory link in the middle of a path, and a file link as the last component.
    await symlink(outside, join(root, "repos", "evil"));
    await symlink(join(outside, "secret"), join(root, "repos", "leak"));
    const driver = await createDriver("filesystem", { rootdirectory: root });
    const notFound = DriverErrorCode.PathNotFound;

    for (const path of ["/repos/evil/secret", "/repos/leak"]) {
      await rejectsWithCode(driver.getContent(path), notFound);
      await rejectsWithCode(driver.reader(path, 0), notFound);
      await rejectsWithCode(driver.copyTo(path, new PassThrough().resume(), 0), notFound);
      await rejectsWithCode(driver.stat(path), notFound);
      await assert.rejects(driver.move(path, "/repos/stolen"));
    }
    await rejectsWithCode(driver.delete("/repos/evil/secret"), notFound);
    await rejectsWithCode(driver.list("/repos/evil"), notFound);
    await rejectsWithCode(
      driver.walk("/repos/evil", () => {}),
      notFound,
    );
    assert.deepEqual(await driver.list("/repos"), ["/repos/own"]);
    const walked: string[] = [];
    await driver.walk("/", (info) => void walked.push(info.path));
    assert.deepEqual(walked, ["/repos", "/repos/own"]);

    await assert.rejects(driver.putContent("/repos/evil/planted", Buffer.from("x")));
    await assert.rejects(driver.putContent("/repos/evil/deeper/planted", Buffer.from("x")));
    await assert.rejects(driver.writer("/repos/evil/upload", false));
    // touch truncates: through a link it would empty the file outside.
    await assert.rejects(driver.touch("/repos/evil/secret"));
    await assert.rejects(driver.touch("/repos/evil/planted"));
    await assert.rejects(driver.touch("/repos/leak"));
    await assert.rejects(driver.move("/repos/own", "/repos/evil/moved"));
    assert.equal(await readFile(join(root, "repos", "own"), "utf8"), "inside");

    // Deleting the file link removes the link, never what it points at.
    await driver.delete("/repos/leak").catch(() => {});
    // Nothing outside was read into, written, moved or removed.
    assert.deepEqual(await readdir(outside), ["secret"]);
    assert.equal(await readFile(join(outside, "secret"), "utf8"), "outside");
    // The store itself still works around the links.
    await driver.putContent("/repos/new/data", Buffer.from("ok"));
    assert.equal(Buffer.from(await driver.getContent("/repos/new/data")).toString(), "ok");
  });
  it("judges each directory below the root once: a link planted below a judged directory is refused, one inside the root is followed, a dangling one is refused", async () => {
    const dir = await freshDirectory();
    const root = join(dir, "root");
    const outside = join(dir, "outside");
    await mkdir(join(root, "a", "b"), { recursive: true });
    await mkdir(join(root, "inner"));
    await mkdir(outside);
    await writeFile(join(outside, "secret"), "outside");
    await writeFile(join(root, "inner", "file"), "inner");
    const driver = await createDriver("filesystem", { rootdirectory: root });
    const notFound = DriverErrorCode.PathNotFound;
    // /a and /a/b are judged (and remembered) by this write; links planted below them afterwards
    // are judged on their own.
    await driver.putContent("/a/b/own", Buffer.from("own"));
    await symlink(outside, join(root, "a", "b", "evil"));
    await symlink(join(dir, "nowhere"), join(root, "a", "b", "dangling"));
    await symlink(join(root, "inner"), join(root, "a", "b", "alias"));
    await rejectsWithCode(driver.getContent("/a/b/evil/secret"), notFound);
    await assert.rejects(driver.putContent("/a/b/evil/deeper/planted", Buffer.from("x")));
    await rejectsWithCode(driver.getContent("/a/b/dangling/x"), notFound);
    await assert.rejects(driver.putContent("/a/b/dangling/planted", Buffer.from("x")));
    assert.equal(Buffer.from(await driver.getContent("/a/b/alias/file")).toString(), "inner");
    assert.deepEqual(await readdir(outside), ["secret"]);
    assert.deepEqual(await readdir(dir), ["outside", "root"]);
    assert.equal(Buffer.from(await driver.getContent("/a/b/own")).toString(), "own");
  });
});
