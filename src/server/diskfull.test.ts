// A full disk, for real: the filesystem driver on a small tmpfs (we mount one when allowed, as root
// in CI). A PATCH that fills the disk gets 507 with the error envelope saying storage is full, the
// process keeps serving, and the upload keeps what was written: GET, PATCH and PUT agree on its
// offset, and once space is freed it resumes from there and completes with the right digest.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sha256, startTestRegistry, type TestRegistry } from "../testing/harness.js";

const MiB = 1024 * 1024;
let mountPoint: string;
let mounted = false;
let registry: TestRegistry;

before(async () => {
  mountPoint = await mkdtemp(join(tmpdir(), "berth-full-"));
  mounted =
    spawnSync("mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint], { stdio: "ignore" })
      .status === 0;
  if (!mounted) return;
  registry = await startTestRegistry({
    driver: "filesystem",
    parameters: { rootdirectory: join(mountPoint, "root") },
  });
});

after(async () => {
  await registry?.close();
  if (mounted) spawnSync("umount", [mountPoint], { stdio: "ignore" });
  await rmdir(mountPoint).catch(() => rm(mountPoint, { recursive: true, force: true }));
});

/** The upload's offset as GET reports it (the last byte's index + 1), or its error code. */
async function status(location: string): Promise<number | string> {
  const response = await registry.fetch(location);
  if (response.status !== 204) return ((await response.json()) as ErrorBody).errors[0]!.code;
  return Number(response.headers.get("range")!.split("-")[1]) + 1;
}

interface ErrorBody {
  errors: { code: string; message: string }[];
}

test("a full disk answers 507, keeps serving and leaves the upload resumable", async (t) => {
  if (!mounted) {
    if (process.env.CI === "true")
      assert.fail("cannot mount a tmpfs (the test runs as root in CI)");
    t.skip("cannot mount a tmpfs here (needs root)");
    return;
  }
  // 4 MiB of filler outside the storage root, removed later to make room.
  const filler = join(mountPoint, "filler");
  await writeFile(filler, randomBytes(4 * MiB));
  const content = randomBytes(6 * MiB);
  const name = "full/repo";

  const started = await registry.fetch(`/v2/${name}/blobs/uploads/`, { method: "POST" });
  assert.equal(started.status, 202);
  let location = started.headers.get("location")!;
  const first = await registry.fetch(location, {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream" },
    body: content.subarray(0, 2 * MiB),
  });
  assert.equal(first.status, 202);
  assert.equal(first.headers.get("range"), `0-${2 * MiB - 1}`);
  location = first.headers.get("location")!;

  // The rest does not fit: 8 MiB of tmpfs hold the filler, the first 2 MiB and a part of it.
  let failed: Response | undefined;
  try {
    failed = await registry.fetch(location, {
      method: "PATCH",
      headers: { "Content-Type": "application/octet-stream" },
      body: content.subarray(2 * MiB),
    });
  } catch {
    // The client may see the connection close before it reads the answer: checked below anyway.
  }
  if (failed !== undefined) {
    assert.equal(failed.status, 507);
    const body = (await failed.json()) as ErrorBody;
    assert.equal(body.errors[0]!.code, "UNKNOWN");
    assert.match(body.errors[0]!.message, /storage is full/);
  }

  // Still serving, and the upload holds a whole prefix of what was sent, the first 2 MiB at least.
  assert.equal((await registry.fetch("/v2/")).status, 200);
  const offset = await status(location);
  assert.equal(typeof offset, "number", `GET status of the cut upload: ${offset}`);
  assert.ok((offset as number) >= 2 * MiB && (offset as number) < content.length);
  // PATCH agrees: a chunk at any other offset is refused with the upload's real range.
  const wrong = await registry.fetch(location, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Range": `${(offset as number) + 1}-${(offset as number) + 1}`,
    },
    body: content.subarray(0, 1),
  });
  assert.equal(wrong.status, 416);
  assert.equal(await status(location), offset);

  // Room again: the upload resumes from its offset and completes with the right digest.
  await rm(filler);
  const rest = await registry.fetch(location, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Range": `${offset as number}-${content.length - 1}`,
    },
    body: content.subarray(offset as number),
  });
  assert.equal(rest.status, 202, await rest.text());
  const digest = sha256(content);
  const next = rest.headers.get("location")!;
  const done = await registry.fetch(`${next}${next.includes("?") ? "&" : "?"}digest=${digest}`, {
    method: "PUT",
  });
  assert.equal(done.status, 201, await done.text());
  const stored = await registry.fetch(`/v2/${name}/blobs/${digest}`);
  assert.deepEqual(Buffer.from(await stored.arrayBuffer()), content);
});
