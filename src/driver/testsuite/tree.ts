// The shared driver suite, list and stat: children, files and directories, modification times.

import assert from "node:assert/strict";
import { DriverErrorCode } from "../driver.js";
import { isValidPath } from "../paths.js";
import type { Suite } from "./context.js";
import { randomContent, randomName, rejectsWith, sleep } from "./support.js";

const { PathNotFound } = DriverErrorCode;

export function treeTests(suite: Suite): void {
  const { test, modTimeResolutionMs } = suite;

  test("list gives the full paths of the direct children only", async (s) => {
    const dir = s.path(randomName());
    const children: string[] = [];
    for (let i = 0; i < 20; i++) {
      const child = `${dir}/${randomName(8 + (i % 8))}`;
      children.push(child);
      await suite.driver.putContent(child, randomContent(32));
    }
    const sub = `${dir}/sub`;
    await suite.driver.putContent(`${sub}/deeper/file`, randomContent(8));
    children.push(sub);

    assert.deepEqual(await suite.driver.list(s.root), [dir]);
    assert.deepEqual((await suite.driver.list(dir)).sort(), children.sort());
    assert.deepEqual(await suite.driver.list(sub), [`${sub}/deeper`]);
    assert.deepEqual(await suite.driver.list(`${sub}/deeper`), [`${sub}/deeper/file`]);
    const top = await suite.driver.list("/");
    assert.ok(top.includes(s.root), "list(/) includes the test directory");
    for (const path of top)
      assert.ok(isValidPath(path) && path.lastIndexOf("/") === 0, `list(/) gave ${path}`);
    const missing = `${dir}/nonexistent`;
    await rejectsWith(
      suite.driver,
      suite.driver.list(missing),
      { code: PathNotFound, path: missing },
      "list of a missing path",
    );
    // A file is there but has no children: it lists as empty, as in the inmemory reference.
    const file = `${sub}/deeper/file`;
    assert.deepEqual(await suite.driver.list(file), [], "list of a file");
    const belowFile: string[] = [];
    await suite.driver.walk(file, (info) => void belowFile.push(info.path));
    assert.deepEqual(belowFile, [], "walk of a file");
  });

  test("stat describes files and directories", async (s) => {
    const dir = s.path("dir", "sub");
    const file = `${dir}/file`;
    await rejectsWith(
      suite.driver,
      suite.driver.stat(dir),
      { code: PathNotFound, path: dir },
      "stat before writing",
    );
    await rejectsWith(
      suite.driver,
      suite.driver.stat(file),
      { code: PathNotFound, path: file },
      "stat before writing",
    );
    const before = Date.now();
    await suite.driver.putContent(file, randomContent(4096));
    const after = Date.now();

    const info = await suite.driver.stat(file);
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
      const dirInfo = await suite.driver.stat(path);
      assert.equal(dirInfo.path, path);
      assert.equal(dirInfo.isDir, true, `${path} is a directory`);
      assert.equal(dirInfo.size, 0, `${path} has size 0`);
      assert.ok(dirInfo.modTime instanceof Date, "modTime is a Date");
    }
  });

  test("modTime moves forward when a file is rewritten", async (s) => {
    const path = s.path("file");
    await suite.driver.putContent(path, randomContent(16));
    const first = (await suite.driver.stat(path)).modTime;
    await sleep(modTimeResolutionMs + 100);
    await suite.driver.putContent(path, randomContent(16));
    const second = (await suite.driver.stat(path)).modTime;
    assert.ok(second > first, `after putContent: ${second.toISOString()} > ${first.toISOString()}`);
    await sleep(modTimeResolutionMs + 100);
    const writer = await suite.driver.writer(path, false);
    await writer.write(randomContent(16));
    await writer.commit();
    const third = (await suite.driver.stat(path)).modTime;
    assert.ok(
      third > second,
      `after a writer's commit: ${third.toISOString()} > ${second.toISOString()}`,
    );
    await sleep(modTimeResolutionMs + 100);
    await suite.driver.touch(path);
    const touched = await suite.driver.stat(path);
    assert.ok(
      touched.modTime > third,
      `after touch: ${touched.modTime.toISOString()} > ${third.toISOString()}`,
    );
    assert.equal(touched.size, 0, "touch leaves an empty object");
    assert.equal((await suite.driver.getContent(path)).length, 0);
  });

  test("touch creates an empty object, and the directories it needs", async (s) => {
    const path = s.path("new", "dir", "record");
    const before = Date.now();
    await suite.driver.touch(path);
    const info = await suite.driver.stat(path);
    assert.equal(info.isDir, false);
    assert.equal(info.size, 0);
    const skew = 60_000;
    assert.ok(
      Math.abs(info.modTime.getTime() - before) < skew,
      `modTime ${info.modTime.toISOString()} is not near the time of touching`,
    );
    assert.deepEqual(await suite.driver.list(s.path("new", "dir")), [path]);
  });
}
