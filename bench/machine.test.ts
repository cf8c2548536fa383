import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ext4Journal, machine } from "./machine.js";

describe("the bench's machine line: whether an ext4 disk has a journal", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-machine-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const ext4 = "/dev/vda       ext4  252G   53G   50G  52% /";

  it("is true when jbd2 lists the device, false when it lists only others", async () => {
    const jbd2 = join(dir, "some");
    await mkdir(join(jbd2, "vdb-8"), { recursive: true });
    assert.equal(ext4Journal(ext4, jbd2), false);
    await mkdir(join(jbd2, "vda-8"));
    assert.equal(ext4Journal(ext4, jbd2), true);
  });

  it("is false when there is no jbd2 at all", () => {
    assert.equal(ext4Journal(ext4, join(dir, "missing")), false);
  });

  it("does not take a device whose name only begins the same", async () => {
    const jbd2 = join(dir, "prefix");
    await mkdir(join(jbd2, "vda1-8"), { recursive: true });
    assert.equal(ext4Journal(ext4, jbd2), false);
  });

  it("is undefined for other file systems, for a line without a device, and when jbd2 is unreadable", async () => {
    assert.equal(ext4Journal("tmpfs tmpfs 12G 0 12G 0% /tmp", dir), undefined);
    assert.equal(ext4Journal("/dev/vda xfs 252G 53G 50G 52% /", dir), undefined);
    assert.equal(ext4Journal("unknown", dir), undefined);
    const file = join(dir, "a-file");
    await writeFile(file, "");
    assert.equal(ext4Journal(ext4, file), undefined);
  });

  it("appears in the machine line only for an ext4 disk", () => {
    const line = machine();
    assert.equal(typeof line.cores, "number");
    const disk = String(line.disk);
    if (disk.split(" ")[1] === "ext4") assert.equal(typeof line.ext4Journal, "boolean");
    else assert.equal("ext4Journal" in line, false);
  });
});
