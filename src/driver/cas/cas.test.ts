// The CAS driver: the shared driver suite on the paths it stores as paths (Berth's own state and
// uploads live in its scratch area), and the registry paths it serves from the CAS and a
// transferer (an in-memory one here; the real ones are tested in src/p2p).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { text } from "node:stream/consumers";
import { after, before, describe, it } from "node:test";
import { DriverErrorCode, type StorageDriver } from "../driver.js";
import { createDriver } from "../factory.js";
import { runDriverSuite } from "../testsuite/index.js";
import { CAStore, TransferNotFoundError, parseLayoutPath, type Transferer } from "./index.js";

const V2 = "/docker/registry/v2";

function digestOf(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function blobPath(digest: string): string {
  const hex = digest.slice("sha256:".length);
  return `${V2}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}

/** A transferer over maps, counting downloads. */
class MemoryTransferer implements Transferer {
  blobs = new Map<string, Buffer>();
  tags = new Map<string, string>();
  downloads = 0;
  uploads: { digest: string; repository?: string; manifest?: boolean }[] = [];

  async download(digest: string): Promise<Readable> {
    const bytes = this.blobs.get(digest);
    if (bytes === undefined) throw new TransferNotFoundError(digest);
    this.downloads += 1;
    return Readable.from([bytes]);
  }
  async upload(
    digest: string,
    stream: Readable,
    hint?: { repository?: string; manifest?: boolean },
  ): Promise<void> {
    this.blobs.set(digest, Buffer.from(await text(stream)));
    this.uploads.push({ digest, ...hint });
  }
  async getTag(repository: string, tag: string): Promise<string> {
    const digest = this.tags.get(`${repository}:${tag}`);
    if (digest === undefined) throw new TransferNotFoundError(`${repository}:${tag}`);
    return digest;
  }
  async putTag(repository: string, tag: string, digest: string): Promise<void> {
    this.tags.set(`${repository}:${tag}`, digest);
  }
  async stat(digest: string): Promise<{ size: number }> {
    const bytes = this.blobs.get(digest);
    if (bytes === undefined) throw new TransferNotFoundError(digest);
    return { size: bytes.length };
  }
}

const roots: string[] = [];
async function root(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "berth-cas-"));
  roots.push(dir);
  return dir;
}
after(async () => {
  await Promise.all(roots.map((dir) => rm(dir, { recursive: true, force: true })));
});

runDriverSuite(
  "cas (scratch area: paths outside the registry's tree)",
  async () =>
    createDriver("cas", { rootdirectory: await root(), transferer: new MemoryTransferer() }),
  { largeSize: 16 * 1024 * 1024, modTimeResolutionMs: 20 },
);

describe("cas driver: path parsing", () => {
  it("names each kind of the registry's layout, with its repository, tag and digest", () => {
    const digest = digestOf("x");
    const hex = digest.slice(7);
    assert.deepEqual(parseLayoutPath(blobPath(digest)), { kind: "blob", digest });
    assert.deepEqual(parseLayoutPath(`${V2}/repositories/a/b/_layers/sha256/${hex}/link`), {
      kind: "layerLink",
      repository: "a/b",
      digest,
    });
    assert.deepEqual(
      parseLayoutPath(`${V2}/repositories/a/_manifests/revisions/sha256/${hex}/link`),
      { kind: "revisionLink", repository: "a", digest },
    );
    assert.deepEqual(parseLayoutPath(`${V2}/repositories/a/_manifests/tags/v1/current/link`), {
      kind: "tagLink",
      repository: "a",
      tag: "v1",
    });
    assert.deepEqual(
      parseLayoutPath(`${V2}/repositories/a/_manifests/tags/v1/index/sha256/${hex}/link`),
      { kind: "tagIndexLink", repository: "a", tag: "v1", digest },
    );
    assert.deepEqual(parseLayoutPath(`${V2}/repositories/a/_uploads/u1/data`), {
      kind: "upload",
      repository: "a",
      id: "u1",
    });
    assert.deepEqual(parseLayoutPath("/berth/health/x"), { kind: "local" });
    for (const path of [
      `${V2}/repositories/a`,
      `${V2}/repositories/_layers/sha256/${hex}/link`,
      `${V2}/blobs/sha256/zz/${hex}/data`,
      `${V2}/blobs/sha256/${hex.slice(0, 2)}/nothex/data`,
      `${V2}/elsewhere`,
      "/docker",
    ]) {
      assert.equal(parseLayoutPath(path).kind, "unserved", path);
    }
  });
});

describe("cas driver: registry paths", () => {
  let transferer: MemoryTransferer;
  let driver: StorageDriver;
  let dir: string;
  const layer = Buffer.from("layer bytes");
  const layerDigest = digestOf(layer);

  before(async () => {
    dir = await root();
    transferer = new MemoryTransferer();
    transferer.blobs.set(layerDigest, layer);
    transferer.tags.set("team/app:v1", layerDigest);
    driver = await createDriver("cas", { rootdirectory: dir, transferer });
  });

  it("downloads a blob once on first read, then serves it from the CAS", async () => {
    assert.equal((await driver.stat(blobPath(layerDigest))).size, layer.length);
    const [a, b] = await Promise.all([
      driver.reader(blobPath(layerDigest), 0),
      driver.reader(blobPath(layerDigest), 6),
    ]);
    assert.equal(await text(a), "layer bytes");
    assert.equal(await text(b), "bytes");
    assert.equal(
      Buffer.from(await driver.getContent(blobPath(layerDigest))).toString(),
      "layer bytes",
    );
    assert.equal(transferer.downloads, 1);
  });

  it("answers links from their path and tags from the transferer", async () => {
    const hex = layerDigest.slice(7);
    const link = `${V2}/repositories/team/app/_layers/sha256/${hex}/link`;
    assert.equal(Buffer.from(await driver.getContent(link)).toString(), layerDigest);
    const tag = `${V2}/repositories/team/app/_manifests/tags/v1/current/link`;
    assert.equal(Buffer.from(await driver.getContent(tag)).toString(), layerDigest);
    await assert.rejects(
      driver.getContent(`${V2}/repositories/team/app/_manifests/tags/v2/current/link`),
      { code: DriverErrorCode.PathNotFound },
    );
  });

  it("refuses a blob whose bytes do not match its digest, keeping nothing", async () => {
    const wrong = digestOf("other");
    transferer.blobs.set(wrong, Buffer.from("not other"));
    await assert.rejects(driver.reader(blobPath(wrong), 0), { code: DriverErrorCode.Backend });
    transferer.blobs.delete(wrong);
    await assert.rejects(driver.stat(blobPath(wrong)), { code: DriverErrorCode.PathNotFound });
  });

  it("is read-only by default, and answers what it does not support with UnsupportedMethodError", async () => {
    const unsupported = { code: DriverErrorCode.UnsupportedMethod };
    await assert.rejects(driver.putContent(blobPath(digestOf("y")), Buffer.from("y")), unsupported);
    await assert.rejects(driver.delete(blobPath(layerDigest)), unsupported);
    await assert.rejects(driver.list(`${V2}/repositories`), unsupported);
    await assert.rejects(
      driver.walk(`${V2}/blobs`, () => {}),
      unsupported,
    );
    await assert.rejects(driver.getContent(`${V2}/repositories/team/app`), unsupported);
    await assert.rejects(driver.writer(`${V2}/repositories/a/_uploads/u/data`, false), unsupported);
  });
});

describe("cas driver: read-write", () => {
  it("moves a finished upload into the CAS by digest and sends blobs, manifests and tags out", async () => {
    const transferer = new MemoryTransferer();
    const driver = await createDriver("cas", {
      rootdirectory: await root(),
      constructor: "rw",
      transferer,
    });
    const bytes = Buffer.from("pushed layer");
    const digest = digestOf(bytes);
    const upload = `${V2}/repositories/app/_uploads/u1/data`;
    const writer = await driver.writer(upload, false);
    await writer.write(bytes);
    await writer.commit();
    await driver.move(upload, blobPath(digest));
    assert.deepEqual(transferer.uploads, []);
    const layerLink = `${V2}/repositories/app/_layers/sha256/${digest.slice(7)}/link`;
    await assert.rejects(driver.getContent(layerLink), { code: DriverErrorCode.PathNotFound });
    await driver.putContent(layerLink, Buffer.from(digest));
    assert.deepEqual(transferer.uploads, [{ digest, repository: "app" }]);
    await driver.putContent(layerLink, Buffer.from(digest));
    assert.equal(transferer.uploads.length, 1, "sent once: the other side has it now");
    await assert.rejects(driver.stat(upload), { code: DriverErrorCode.PathNotFound });

    const manifest = Buffer.from('{"schemaVersion":2}');
    const manifestDigest = digestOf(manifest);
    await driver.putContent(blobPath(manifestDigest), manifest);
    const hex = manifestDigest.slice(7);
    await driver.putContent(
      `${V2}/repositories/app/_manifests/revisions/sha256/${hex}/link`,
      Buffer.from(manifestDigest),
    );
    await driver.putContent(
      `${V2}/repositories/app/_manifests/tags/latest/current/link`,
      Buffer.from(manifestDigest),
    );
    assert.deepEqual(transferer.uploads[1], {
      digest: manifestDigest,
      repository: "app",
      manifest: true,
    });
    assert.equal(transferer.tags.get("app:latest"), manifestDigest);

    const wrong = `${V2}/repositories/app/_uploads/u2/data`;
    await driver.putContent(wrong, Buffer.from("something else"));
    await assert.rejects(driver.move(wrong, blobPath(digestOf("x"))), {
      code: DriverErrorCode.Backend,
    });
    await assert.rejects(driver.stat(blobPath(digestOf("x"))), {
      code: DriverErrorCode.PathNotFound,
    });
  });

  it("names a missing transferer and a bad constructor", async () => {
    const rootdirectory = await root();
    await assert.rejects(createDriver("cas", { rootdirectory }), /parameter transferer/);
    await assert.rejects(
      createDriver("cas", { rootdirectory, constructor: "rx", transferer: new MemoryTransferer() }),
      /parameter constructor/,
    );
  });
});

describe("cas store: LRU by bytes", () => {
  it("keeps at most its capacity, least recently used out first, and the order survives a reopen", async () => {
    const dir = await root();
    const blobs = ["a", "b", "c"].map((letter) => Buffer.alloc(100, letter));
    const digests = blobs.map((bytes) => digestOf(bytes));
    const store = await CAStore.open(dir, { capacity: 250 });
    await store.put(digests[0]!, Readable.from([blobs[0]!]));
    await store.put(digests[1]!, Readable.from([blobs[1]!]));
    assert.equal(store.has(digests[0]!), 100); // a is now the most recently used
    await store.put(digests[2]!, Readable.from([blobs[2]!]));
    assert.equal(store.has(digests[1]!), undefined);
    assert.equal(store.size, 200);
    // Use times are file times: make c older than a, then reopen.
    await utimes(store.file(digests[2]!), new Date(1000), new Date(1000));
    await utimes(store.file(digests[0]!), new Date(), new Date());
    const reopened = await CAStore.open(dir, { capacity: 250 });
    assert.equal(reopened.size, 200);
    await reopened.put(digests[1]!, Readable.from([blobs[1]!]));
    assert.equal(reopened.has(digests[2]!), undefined);
    assert.equal(reopened.has(digests[0]!), 100);
  });
});
