// The s3 driver on a real Ceph RADOS Gateway: the shared driver suite, then what only S3 has
// (multipart resume across driver instances with a short last part, bounded memory on a 256 MiB
// write, presigned URLs, parameter errors). One cluster serves the whole file: node --test runs
// each file in its own process, and starting Ceph once keeps the file within its time budget.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
  createDriver,
  DriverErrorCode,
  S3Driver,
  type DriverUse,
  type StorageDriver,
} from "../index.js";
import { runDriverSuite } from "../testsuite/index.js";
import { download, MemoryWatch, requestsSpent } from "../testsuite/support.js";
import { DriverBase } from "../base.js";
import { startCeph, readRgwRequests, type CephCluster } from "../../testing/ceph.js";
import { eventually } from "../../testing/eventually.js";
import { readS3Parameters } from "./parameters.js";
import { S3Driver as S3DriverClass, type S3ReadTuning } from "./driver.js";
import { Writable } from "node:stream";
import { skipUnlessCommands } from "../../testing/tools.js";

const MiB = 1024 * 1024;
const skip = skipUnlessCommands(
  ["ceph-mon", "ceph-osd", "radosgw", "ceph"],
  ["ceph-mon", "ceph-osd", "radosgw", "ceph-common"],
);

describe("s3 driver on Ceph RGW", { skip }, () => {
  let ceph: CephCluster;
  const bucket = "berth-tests";

  /** A driver on the test bucket; every driver gets its own root directory unless told. */
  const driverFor = (parameters: Record<string, unknown> = {}, use: DriverUse = {}) =>
    createDriver(
      "s3",
      {
        bucket,
        region: ceph.region,
        regionendpoint: ceph.endpoint,
        accesskey: ceph.accessKey,
        secretkey: ceph.secretKey,
        rootdirectory: `/${randomBytes(6).toString("hex")}`,
        ...parameters,
      },
      use,
    );

  before(
    async () => {
      ceph = await startCeph();
      await ceph.createBucket(bucket);
      process.stderr.write(`# Ceph RGW up in ${ceph.startMs} ms at ${ceph.endpoint}\n`);
    },
    { timeout: 90_000 },
  );

  after(async () => {
    await ceph?.stop();
  });

  it("for a garbage collection (mustExist), a missing bucket is an error naming it", async () => {
    await assert.rejects(
      createDriver(
        "s3",
        {
          bucket: "no-such-bucket",
          region: ceph.region,
          regionendpoint: ceph.endpoint,
          accesskey: ceph.accessKey,
          secretkey: ceph.secretKey,
        },
        { mustExist: true },
      ),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, DriverErrorCode.PathNotFound);
        assert.match(error.message, /s3:\/\/no-such-bucket/);
        return true;
      },
    );
    const existing = await driverFor({}, { mustExist: true });
    assert.equal(existing.name, "s3");
  });

  // First in the file, so the process's memory is not yet shaped by the other tests.
  describe("s3 memory", () => {
    it("writes 256 MiB with memory bounded by the chunk size, not the blob size", async () => {
      const chunksize = 10 * MiB;
      const driver = await driverFor({ chunksize });
      const total = 256 * MiB;
      const piece = randomBytes(MiB);
      const hash = createHash("sha256");
      // 8 MiB between collections: garbage the driver no longer holds must not count.
      const memory = new MemoryWatch(8 * MiB);
      const writer = await driver.writer("/large/data", false);
      for (let written = 0; written < total; written += piece.length) {
        // Vary the content per MiB so a part can't pass by repeating one buffer by mistake.
        piece.writeUInt32BE(written / MiB, 0);
        hash.update(piece);
        await writer.write(piece);
        memory.passed(piece.length);
      }
      await writer.commit();
      const growth = memory.growth();
      process.stderr.write(
        `# 256 MiB write, chunksize 10 MiB: peak RSS growth ${(growth / MiB).toFixed(1)} MiB\n`,
      );
      assert.ok(
        growth < 3 * chunksize + 16 * MiB,
        `RSS grew by ${(growth / MiB).toFixed(1)} MiB writing 256 MiB`,
      );

      const info = await driver.stat("/large/data");
      assert.equal(info.size, total);
      const readBack = createHash("sha256");
      for await (const chunk of await driver.reader("/large/data", 0))
        readBack.update(chunk as Buffer);
      assert.equal(readBack.digest("hex"), hash.digest("hex"));
      await driver.delete("/large");
    });
  });

  runDriverSuite("s3", () => driverFor(), { modTimeResolutionMs: 1000 });

  describe("s3 specifics", () => {
    it("resumes a closed writer from another driver instance when the last part was under 5 MiB", async () => {
      const rootdirectory = `/${randomBytes(6).toString("hex")}`;
      const first = await driverFor({ rootdirectory, chunksize: 5 * MiB });
      const second = await driverFor({ rootdirectory, chunksize: 5 * MiB });
      const path = "/uploads/u1/data";
      const pieces = [
        randomBytes(5 * MiB + 12345),
        randomBytes(700_000),
        randomBytes(3 * MiB),
        randomBytes(99),
      ];

      // Session 1: one full part (5 MiB) and 12345 bytes that stay below the part minimum.
      const w1 = await first.writer(path, false);
      await w1.write(pieces[0]!);
      await w1.close();
      await assert.rejects(first.stat(path), { code: DriverErrorCode.PathNotFound });

      // Session 2, another instance: resumes, adds less than a part, closes again.
      const w2 = await second.writer(path, true);
      assert.equal(w2.size, pieces[0]!.length);
      await w2.write(pieces[1]!);
      await w2.close();

      // Session 3: the short tail and new bytes make a full part; then commit.
      const w3 = await first.writer(path, true);
      assert.equal(w3.size, pieces[0]!.length + pieces[1]!.length);
      await w3.write(pieces[2]!);
      await w3.write(pieces[3]!);
      await w3.commit();

      const expected = Buffer.concat(pieces);
      const stored = Buffer.from(await second.getContent(path));
      assert.equal(stored.length, expected.length);
      assert.ok(stored.equals(expected), "resumed content differs from what was written");
      // Nothing to resume after commit, and no hidden tail shows in listings.
      await assert.rejects(second.writer(path, true), { code: DriverErrorCode.PathNotFound });
      assert.deepEqual(await second.list("/uploads/u1"), [path]);
      await second.delete("/uploads");
    });

    it("ignores a tail left by a session that crashed after moving its bytes into a part", async () => {
      const root = randomBytes(6).toString("hex");
      const driver = await driverFor({ rootdirectory: `/${root}`, chunksize: 5 * MiB });
      const client = (driver.inner as S3Driver).client;
      const path = "/uploads/u3/data";
      const tailKey = `${root}${path}~tail`;
      const stream = randomBytes(10 * MiB + 300);

      // Session 1: one part and a 100-byte tail.
      const w1 = await driver.writer(path, false);
      await w1.write(stream.subarray(0, 5 * MiB + 100));
      await w1.close();
      const tail = await client.send(new GetObjectCommand({ Bucket: bucket, Key: tailKey }));
      const tailBytes = await tail.Body!.transformToByteArray();
      assert.equal(tailBytes.length, 100);

      // Session 2 takes the tail into its second part, then dies without close(); the tail is put
      // back as if its removal had never happened.
      const w2 = await driver.writer(path, true);
      await w2.write(stream.subarray(5 * MiB + 100, 10 * MiB + 300));
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: tailKey,
          Body: tailBytes,
          Metadata: tail.Metadata,
        }),
      );

      // Session 3 counts the two parts once and the stale tail not at all.
      const w3 = await driver.writer(path, true);
      assert.equal(w3.size, 10 * MiB);
      await w3.write(stream.subarray(10 * MiB));
      await w3.commit();
      const stored = Buffer.from(await driver.getContent(path));
      assert.ok(stored.equals(stream), "content differs after a resume past a stale tail");
      await driver.delete("/uploads");
    });

    it("resumes a writer closed before its first part, and cancels what was resumed", async () => {
      const driver = await driverFor();
      const path = "/small/data";
      const w1 = await driver.writer(path, false);
      await w1.write(Buffer.from("hello "));
      await w1.close();
      const w2 = await driver.writer(path, true);
      assert.equal(w2.size, 6);
      await w2.cancel();
      await assert.rejects(driver.writer(path, true), { code: DriverErrorCode.PathNotFound });
      await assert.rejects(driver.stat("/small"), { code: DriverErrorCode.PathNotFound });
    });

    it("an abort stops the part upload a write has in flight; close() keeps what was buffered", async () => {
      const driver = await driverFor({ chunksize: 5 * MiB });
      const path = `/inflight-${randomBytes(4).toString("hex")}/data`;
      const content = randomBytes(20 * MiB);
      const controller = new AbortController();
      const writer = await driver.writer(path, false, { signal: controller.signal });
      const write = writer.write(content);
      setImmediate(() => controller.abort());
      await assert.rejects(write, { code: DriverErrorCode.Aborted });
      await writer.close();
      const resumed = await driver.writer(path, true);
      // Without the abort reaching the request, the write would have gone on to the end (20 MiB).
      assert.equal(resumed.size, 5 * MiB, "one chunk buffered, none uploaded past the abort");
      await resumed.commit();
      assert.ok(Buffer.from(await driver.getContent(path)).equals(content.subarray(0, 5 * MiB)));
    });

    it("deleting an upload directory aborts its multipart uploads", async () => {
      const driver = await driverFor({ chunksize: 5 * MiB });
      const path = "/uploads/u2/data";
      const writer = await driver.writer(path, false);
      await writer.write(randomBytes(5 * MiB));
      await writer.close();
      await driver.putContent("/uploads/u2/startedat", Buffer.from("now"));
      await driver.delete("/uploads/u2");
      await assert.rejects(driver.writer(path, true), { code: DriverErrorCode.PathNotFound });
    });

    it("moves above the multipart copy threshold with parallel part copies", async () => {
      const driver = await driverFor({
        multipartcopythresholdsize: 5 * MiB,
        multipartcopychunksize: 5 * MiB,
      });
      const content = randomBytes(12 * MiB + 7);
      await driver.putContent("/big/source", content);
      await driver.move("/big/source", "/big/dest");
      const moved = Buffer.from(await driver.getContent("/big/dest"));
      assert.ok(moved.equals(content), "moved content differs");
      await assert.rejects(driver.stat("/big/source"), { code: DriverErrorCode.PathNotFound });
      await driver.delete("/big");
    });

    it("gives presigned GET and HEAD URLs that plain fetch can use", async () => {
      const driver = await driverFor();
      const content = randomBytes(100_000);
      await driver.putContent("/blobs/presigned", content);
      const url = await driver.redirectURL("/blobs/presigned", { expiresIn: 60 });
      assert.ok(url !== null && url.startsWith(ceph.endpoint), `unexpected URL ${url}`);
      const answer = await fetch(url);
      assert.equal(answer.status, 200);
      assert.ok(Buffer.from(await answer.arrayBuffer()).equals(content));

      const headURL = await driver.redirectURL("/blobs/presigned", { method: "HEAD" });
      const head = await fetch(headURL!, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get("content-length"), String(content.length));
      await driver.delete("/blobs");
    });
  });

  describe("s3 ranged reads", () => {
    /** A driver reading in parts of 1 MiB, 4 in flight, within `readAheadBytes`. */
    const rangedDriver = (tuning: Partial<S3ReadTuning> = {}) => {
      const root = `/${randomBytes(6).toString("hex")}`;
      const parameters = readS3Parameters({
        bucket,
        region: ceph.region,
        regionendpoint: ceph.endpoint,
        accesskey: ceph.accessKey,
        secretkey: ceph.secretKey,
        rootdirectory: root,
      });
      const inner = new S3DriverClass(parameters, {
        partSize: MiB,
        window: 4,
        readAheadBytes: 8 * MiB,
        ...tuning,
      });
      return { driver: new DriverBase(inner), root };
    };
    const content = randomBytes(9 * MiB + 12345);

    /** The GETs RGW logged for keys below `root`, once `marker` (requested last) is logged. */
    const loggedGets = async (root: string, marker: string) => {
      let requests: Awaited<ReturnType<typeof readRgwRequests>> = [];
      await eventually(async () => {
        requests = await readRgwRequests(ceph.rgwLog);
        return requests.some((request) => request.target.includes(marker));
      });
      return requests.filter(
        (request) => request.method === "GET" && request.target.startsWith(`/${bucket}${root}/`),
      );
    };

    it("reads in order through parallel ranged GETs, from any offset, one GET for a small file", async () => {
      const { driver, root } = rangedDriver();
      await driver.putContent("/big", content);
      await driver.putContent("/small", content.subarray(0, 1000));
      for (const offset of [0, 1, MiB - 1, 5 * MiB + 7, content.length - 1, content.length]) {
        const chunks: Buffer[] = [];
        for await (const chunk of await driver.reader("/big", offset)) chunks.push(chunk as Buffer);
        assert.ok(Buffer.concat(chunks).equals(content.subarray(offset)), `from ${offset}`);
      }
      const small: Buffer[] = [];
      for await (const chunk of await driver.reader("/small")) small.push(chunk as Buffer);
      assert.ok(Buffer.concat(small).equals(content.subarray(0, 1000)));
      await driver.stat("/marker-small").catch(() => undefined);
      const gets = await loggedGets(root, "marker-small");
      const smallGets = gets.filter((request) =>
        request.target.startsWith(`/${bucket}${root}/small`),
      );
      assert.equal(smallGets.length, 1);
      assert.ok(gets.every((request) => request.status === 206 || request.status === 416));
    });

    it("copies a range to a slow destination with memory bounded by the read-ahead budget", async () => {
      const { driver } = rangedDriver({ partSize: 2 * MiB, readAheadBytes: 4 * MiB });
      const large = randomBytes(64 * MiB);
      await driver.putContent("/large", large);
      // Collections every 8 MiB passed: garbage the reader no longer holds must not count.
      const watch = new MemoryWatch(8 * MiB);
      const hash = createHash("sha256");
      let received = 0;
      // A destination taking 64 KiB per 2 ms: the reader must wait for it, not buffer the blob.
      const slow = new Writable({
        highWaterMark: 64 * 1024,
        write(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          received += chunk.length;
          watch.passed(chunk.length);
          if (received % (64 * 1024) < chunk.length) setTimeout(callback, 2);
          else callback();
        },
      });
      await driver.copyTo("/large", slow, 3, 40 * MiB);
      assert.equal(received, 40 * MiB);
      assert.equal(
        hash.digest("hex"),
        createHash("sha256")
          .update(large.subarray(3, 3 + 40 * MiB))
          .digest("hex"),
      );
      const growth = watch.growth() / MiB;
      assert.ok(growth < 32, `peak RSS growth ${growth.toFixed(1)} MiB copying 40 MiB`);
    });

    it("copies into an HTTP response with one GET per copy, byte for byte to a slow client", async () => {
      const { driver, root } = rangedDriver();
      const blob = randomBytes(32 * MiB + 5);
      await driver.putContent("/served", blob);
      const server = createServer((req, res) => {
        const [offset, length] = (req.url ?? "").slice(1).split("-").map(Number);
        res.writeHead(200);
        driver.copyTo("/served", res, offset, length === 0 ? undefined : length).then(
          () => res.end(),
          () => res.destroy(),
        );
      });
      server.listen(0, "127.0.0.1");
      await once(server, "listening");
      const port = (server.address() as AddressInfo).port;
      // A client slower than the gateway (64 KiB per millisecond), so writes wait.
      const slowly = (path: string) => download(port, path, true);
      try {
        const sha = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");
        assert.equal(sha(await slowly("/0-0")), sha(blob));
        assert.equal(sha(await slowly(`/7-${20 * MiB}`)), sha(blob.subarray(7, 7 + 20 * MiB)));
      } finally {
        server.closeAllConnections();
        server.close();
      }
      await driver.stat("/marker-served").catch(() => undefined);
      const gets = (await loggedGets(root, "marker-served")).filter((request) =>
        request.target.startsWith(`/${bucket}${root}/served`),
      );
      assert.equal(gets.length, 2, "one GET per copy, not one per part");
      assert.ok(gets.every((request) => request.status === 206));
    });

    it("an abort mid-way stops the read and every ranged GET in flight", async () => {
      const { driver } = rangedDriver();
      await driver.putContent("/abort", content);
      const controller = new AbortController();
      const stream = await driver.reader("/abort", 0, { signal: controller.signal });
      let read = 0;
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) {
            read += (chunk as Buffer).length;
            if (read >= 2 * MiB) controller.abort();
          }
        })(),
        (error: Error & { code?: string }) => error.code === DriverErrorCode.Aborted,
      );
      assert.ok(read < content.length);
      const sink = new Writable({ write: (_chunk, _encoding, callback) => callback() });
      const copy = new AbortController();
      const copying = driver.copyTo("/abort", sink, 0, undefined, { signal: copy.signal });
      setTimeout(() => copy.abort(), 5);
      await assert.rejects(
        copying,
        (error: Error & { code?: string }) => error.code === DriverErrorCode.Aborted,
      );
    });

    it("fails a read whose object is replaced between its parts (If-Match), never mixing them", async () => {
      const { driver } = rangedDriver({ window: 1 });
      await driver.putContent("/replaced", content);
      const stream = await driver.reader("/replaced");
      await driver.putContent("/replaced", randomBytes(content.length));
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) void chunk;
        })(),
        /412|PreconditionFailed/,
      );
      await assert.rejects(
        driver.reader("/missing"),
        (error: Error & { code?: string }) => error.code === DriverErrorCode.PathNotFound,
      );
    });
  });

  describe("s3 backend requests", () => {
    it("counts every request the driver sends, retries included, as RGW's access log does", async () => {
      const driver = await driverFor({ chunksize: 5 * MiB });
      assert.ok(driver instanceof DriverBase);
      // Plain GETs of missing keys mark where the driver's requests start and end in the log.
      const mark = async () => {
        const marker = randomBytes(6).toString("hex");
        await fetch(`${ceph.endpoint}/${bucket}/${marker}`).then((answer) => answer.arrayBuffer());
        return marker;
      };
      const start = await mark();
      const seen: string[] = [];
      driver.backendObserver = (operation) => seen.push(operation);
      const writer = await driver.writer("/a/data", false);
      await writer.write(randomBytes(6 * MiB));
      await writer.commit();
      await driver.putContent("/a/link", Buffer.from("x"));
      await driver.stat("/a/link");
      await driver.list("/a");
      await driver.getContent("/a/link");
      await driver.move("/a/link", "/b/link");
      await driver.delete("/a");
      assert.ok((driver.backendRequests.PutObject ?? 0) >= 1);
      assert.ok((driver.backendRequests.UploadPart ?? 0) >= 1);
      assert.ok((driver.backendRequests.CopyObject ?? 0) === 1);
      assert.ok((driver.backendRequests.ListObjectsV2 ?? 0) >= 1);
      const counted = Object.values(driver.backendRequests).reduce((sum, count) => sum + count, 0);
      assert.equal(seen.length, counted);
      // The same count in the gateway's own log, between the markers.
      const end = await mark();
      let logged = 0;
      await eventually(async () => {
        const requests = await readRgwRequests(ceph.rgwLog);
        const from = requests.findIndex((request) => request.target.endsWith(start));
        const to = requests.findIndex((request) => request.target.endsWith(end));
        logged = to - from - 1;
        return from >= 0 && to > from;
      });
      assert.equal(counted, logged, JSON.stringify(driver.backendRequests));
    });
  });

  describe("s3 backend requests saved", () => {
    it("resumes a writer whose tail names its upload without listing uploads; deletes a directory in 3 requests", async () => {
      const driver = await driverFor({ chunksize: 5 * MiB });
      assert.ok(driver instanceof DriverBase);
      const first = await driver.writer("/upload/data", false);
      await first.write(randomBytes(5 * MiB + 10));
      await first.close();
      await driver.putContent("/upload/startedat", Buffer.from("now"));
      const counts = () => ({ ...driver.backendRequests });
      const before = counts();
      const resumed = await driver.writer("/upload/data", true);
      assert.equal(resumed.size, 5 * MiB + 10);
      await resumed.close();
      const resume = counts();
      assert.equal(resume.ListMultipartUploads, before.ListMultipartUploads);
      assert.equal((resume.ListParts ?? 0) - (before.ListParts ?? 0), 1);
      await driver.delete("/upload");
      const after = counts();
      const spent = Object.entries(after).reduce(
        (sum, [operation, count]) => sum + count - (resume[operation] ?? 0),
        0,
      );
      // ListMultipartUploads (aborts the upload), ListObjectsV2, one DeleteObjects.
      assert.equal(
        spent,
        3 + (after.AbortMultipartUpload ?? 0) - (resume.AbortMultipartUpload ?? 0),
      );
      await assert.rejects(
        driver.stat("/upload/data"),
        (error: Error & { code?: string }) => error.code === DriverErrorCode.PathNotFound,
      );
    });
  });

  describe("s3 uploads published where they go", () => {
    const notFound = (error: Error & { code?: string }) =>
      error.code === DriverErrorCode.PathNotFound;

    it("a new upload's writer (newIfMissing) costs two requests; small content goes into place with one conditional PutObject, and a stored blob stays", async () => {
      const driver = await driverFor({ chunksize: 5 * MiB });
      assert.ok(driver instanceof DriverBase);
      const content = randomBytes(4096);
      let writer: Awaited<ReturnType<DriverBase["writer"]>> | undefined;
      const opened = await requestsSpent(driver, async () => {
        writer = await driver.writer("/up1/data", true, { newIfMissing: true });
      });
      assert.deepEqual(opened, { GetObject: 1, ListMultipartUploads: 1 });
      assert.equal(writer!.size, 0);
      await writer!.write(content);
      const published = await requestsSpent(driver, async () => {
        assert.equal(await writer!.commitToIfAbsent!("/blobs/ab/data"), true);
      });
      // One conditional PutObject (If-None-Match: *) at the blob's key.
      assert.deepEqual(published, { PutObject: 1 });
      assert.ok(Buffer.from(await driver.getContent("/blobs/ab/data")).equals(content));
      // Nothing at the writer's key, to read or to resume.
      await assert.rejects(driver.stat("/up1/data"), notFound);
      await assert.rejects(driver.writer("/up1/data", true), notFound);

      // The same blob pushed again: what is stored stays as it was, and the writer's bytes go.
      const storedAt = (await driver.stat("/blobs/ab/data")).modTime;
      const again = await driver.writer("/up2/data", true, { newIfMissing: true });
      await again.write(content);
      const kept = await requestsSpent(driver, async () => {
        assert.equal(await again.commitToIfAbsent!("/blobs/ab/data"), false);
      });
      // The conditional PutObject is refused (412): nothing is written, nothing left to delete.
      assert.deepEqual(kept, { PutObject: 1 });
      assert.equal((await driver.stat("/blobs/ab/data")).modTime.getTime(), storedAt.getTime());
      await assert.rejects(driver.writer("/up2/data", true), notFound);

      // A closed writer's bytes (its tail) resumed and published: the tail goes too.
      const closed = await driver.writer("/up3/data", true, { newIfMissing: true });
      await closed.write(content.subarray(0, 1000));
      await closed.close();
      const resumed = await driver.writer("/up3/data", true, { newIfMissing: true });
      assert.equal(resumed.size, 1000, "a closed writer is resumed, not started anew");
      await resumed.write(content.subarray(1000));
      const withTail = await requestsSpent(driver, async () => {
        assert.equal(await resumed.commitToIfAbsent!("/blobs/ef/data"), true);
      });
      assert.deepEqual(withTail, { PutObject: 1, DeleteObject: 1 });
      assert.ok(Buffer.from(await driver.getContent("/blobs/ef/data")).equals(content));
      await assert.rejects(driver.writer("/up3/data", true), notFound);
    });

    it("commitTo of content in a multipart upload completes it and moves it; nothing is left at the writer's key", async () => {
      const driver = await driverFor({ chunksize: 5 * MiB });
      const pieces = [randomBytes(5 * MiB + 100), randomBytes(2 * MiB + 7)];
      const first = await driver.writer("/up3/data", false);
      await first.write(pieces[0]!);
      await first.close();
      const resumed = await driver.writer("/up3/data", true, { newIfMissing: true });
      assert.equal(resumed.size, pieces[0]!.length, "a closed writer is resumed, not started anew");
      await resumed.write(pieces[1]!);
      assert.ok(driver instanceof DriverBase);
      const published = await requestsSpent(driver, () => resumed.commitTo!("/blobs/cd/data"));
      // The last part, the completion, a copy of known size (no HeadObject), the deletion.
      assert.deepEqual(published, {
        UploadPart: 1,
        CompleteMultipartUpload: 1,
        DeleteObject: 1,
        CopyObject: 1,
        DeleteObjects: 1,
      });
      const stored = Buffer.from(await driver.getContent("/blobs/cd/data"));
      assert.ok(stored.equals(Buffer.concat(pieces)), "the whole content at the destination");
      await assert.rejects(driver.stat("/up3/data"), notFound);
      await assert.rejects(driver.writer("/up3/data", true), notFound);
    });
  });

  describe("s3 errors", () => {
    it("a missing bucket is a backend error naming the operation and bucket, not a missing path", async () => {
      const driver = await driverFor({ bucket: "no-such-bucket" });
      for (const call of [
        () => driver.getContent("/a/b"),
        () => driver.stat("/a/b"),
        () => driver.putContent("/a/b", Buffer.from("x")),
      ]) {
        await assert.rejects(call(), (error: Error & { code?: string }) => {
          assert.equal(error.code, DriverErrorCode.Backend);
          assert.match(error.message, /s3:\/\/no-such-bucket/);
          assert.match(error.message, /NoSuchBucket/);
          return true;
        });
      }
    });
  });

  describe("s3 parameters", () => {
    const base = () => ({ bucket, region: ceph.region, regionendpoint: ceph.endpoint });
    const cases: [string, Record<string, unknown>, string][] = [
      ["bucket missing", { bucket: undefined }, "bucket"],
      ["region missing", { region: "" }, "region"],
      ["chunksize under 5 MiB", { chunksize: "1048576" }, "chunksize"],
      ["chunksize not a number", { chunksize: "ten" }, "chunksize"],
      ["secure not a boolean", { secure: "sometimes" }, "secure"],
      ["accesskey without secretkey", { accesskey: "AK" }, "secretkey"],
      ["regionendpoint not a URL", { regionendpoint: "http://[::1" }, "regionendpoint"],
      ["storageclass unknown", { storageclass: "COLD" }, "storageclass"],
      ["objectacl unknown", { objectacl: "everyone" }, "objectacl"],
      [
        "multipartcopymaxconcurrency zero",
        { multipartcopymaxconcurrency: 0 },
        "multipartcopymaxconcurrency",
      ],
    ];
    for (const [what, change, parameter] of cases) {
      it(`rejects ${what}, naming ${parameter}`, async () => {
        await assert.rejects(
          createDriver("s3", { ...base(), ...change }),
          (error: Error & { code?: string; parameter?: string }) => {
            assert.equal(error.code, DriverErrorCode.InvalidParameter);
            assert.equal(error.parameter, parameter);
            assert.match(error.message, new RegExp(parameter));
            return true;
          },
        );
      });
    }

    it("accepts environment-override strings", async () => {
      const driver: StorageDriver = await createDriver("s3", {
        ...base(),
        accesskey: ceph.accessKey,
        secretkey: ceph.secretKey,
        forcepathstyle: "true",
        secure: "false",
        chunksize: String(6 * MiB),
        rootdirectory: "/env-strings",
      });
      await driver.putContent("/x", Buffer.from("x"));
      assert.deepEqual(await driver.list("/"), ["/x"]);
      await driver.delete("/x");
    });
  });
});
