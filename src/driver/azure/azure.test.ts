// The azure driver against Azurite (npm), started once for this file: the shared driver suite,
// then what is particular to Azure: resuming a writer from another driver instance, SAS redirect
// URLs, the container created on first write, rootdirectory, and parameter errors.

import assert from "node:assert/strict";
import { buffer } from "node:stream/consumers";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { BlobServiceClient, StorageSharedKeyCredential } from "@azure/storage-blob";
import {
  DriverBase,
  DriverErrorCode,
  createDriver,
  type DriverParameters,
  type StorageDriver,
} from "../index.js";
import { runDriverSuite } from "../testsuite/index.js";
import { requestsSpent } from "../testsuite/support.js";
import { startAzurite, type Azurite } from "../../testing/azurite.js";

const MiB = 1024 * 1024;
const CONTAINER = "berth-tests";

let azurite: Azurite;

before(async () => {
  azurite = await startAzurite();
  await azurite.createContainer(CONTAINER);
});

after(async () => {
  await azurite?.stop();
});

function parameters(extra: DriverParameters = {}): DriverParameters {
  return {
    accountname: azurite.accountName,
    accountkey: azurite.accountKey,
    container: CONTAINER,
    serviceurl: azurite.serviceUrl,
    ...extra,
  };
}

function azureDriver(extra: DriverParameters = {}): Promise<StorageDriver> {
  return createDriver("azure", parameters(extra));
}

const unique = () => randomBytes(6).toString("hex");

runDriverSuite("azure", () => azureDriver());

describe("azure driver", () => {
  it("counts each request it sends to the Blob service by operation", async () => {
    const driver = await azureDriver({ rootdirectory: `/${unique()}` });
    assert.ok(driver instanceof DriverBase);
    await driver.putContent("/a/link", Buffer.from("x"));
    assert.deepEqual({ ...driver.backendRequests }, { PutBlob: 1 });
    await driver.stat("/a/link");
    await driver.getContent("/a/link");
    await driver.list("/a");
    const writer = await driver.writer("/a/data", false);
    await writer.write(randomBytes(1000));
    await writer.commit();
    const counts: Record<string, number> = driver.backendRequests;
    assert.equal(counts.PutBlob, 1);
    assert.equal(counts.GetBlobProperties, 1);
    assert.equal(counts.GetBlob, 1);
    assert.ok((counts.ListBlobs ?? 0) >= 1);
    assert.ok((counts.PutBlock ?? 0) + (counts.PutBlockList ?? 0) >= 1, JSON.stringify(counts));
  });

  it("an upload's small content goes into place in one Put Blob, and a stored blob stays", async () => {
    const driver = await azureDriver({ rootdirectory: `/${unique()}` });
    assert.ok(driver instanceof DriverBase);
    const notFound = (error: Error & { code?: string }) =>
      error.code === DriverErrorCode.PathNotFound;
    const content = randomBytes(4096);
    const writer = await driver.writer("/up1/data", true, { newIfMissing: true });
    assert.equal(writer.size, 0);
    await writer.write(content);
    const published = await requestsSpent(driver, async () => {
      assert.equal(await writer.commitToIfAbsent!("/blobs/ab/data"), true);
    });
    assert.deepEqual(published, { PutBlob: 1 });
    assert.ok(Buffer.from(await driver.getContent("/blobs/ab/data")).equals(content));
    await assert.rejects(driver.stat("/up1/data"), notFound);
    await assert.rejects(driver.writer("/up1/data", true), notFound);

    // The same blob again: refused by the service, what is stored stays, nothing is left behind.
    const storedAt = (await driver.stat("/blobs/ab/data")).modTime;
    const again = await driver.writer("/up2/data", true, { newIfMissing: true });
    await again.write(randomBytes(4096));
    assert.equal(await again.commitToIfAbsent!("/blobs/ab/data"), false);
    assert.ok(Buffer.from(await driver.getContent("/blobs/ab/data")).equals(content));
    assert.equal((await driver.stat("/blobs/ab/data")).modTime.getTime(), storedAt.getTime());
    await assert.rejects(driver.writer("/up2/data", true), notFound);

    // Staged content (a closed writer resumed) is committed in place and moved.
    const staged = await driver.writer("/up3/data", false);
    await staged.write(content.subarray(0, 1000));
    await staged.close();
    const resumed = await driver.writer("/up3/data", true, { newIfMissing: true });
    assert.equal(resumed.size, 1000, "a closed writer is resumed, not started anew");
    await resumed.write(content.subarray(1000));
    assert.equal(await resumed.commitToIfAbsent!("/blobs/cd/data"), true);
    assert.ok(Buffer.from(await driver.getContent("/blobs/cd/data")).equals(content));
    await assert.rejects(driver.stat("/up3/data"), notFound);
    await assert.rejects(driver.writer("/up3/data", true), notFound);
  });

  it("for a garbage collection (mustExist), a missing container is an error naming it, not created", async () => {
    const missing = `missing-${unique()}`;
    await assert.rejects(
      createDriver("azure", parameters({ container: missing }), { mustExist: true }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, DriverErrorCode.PathNotFound);
        assert.ok(error.message.includes(missing), error.message);
        return true;
      },
    );
    const existing = await createDriver("azure", parameters(), { mustExist: true });
    assert.equal(existing.name, "azure");
    // Nothing was created: still missing.
    await assert.rejects(
      createDriver("azure", parameters({ container: missing }), { mustExist: true }),
    );
  });

  it("an abort stops the block a write is staging; close() keeps what was buffered", async () => {
    const driver = await azureDriver({ chunksize: MiB });
    const path = `/inflight-${unique()}/data`;
    const content = randomBytes(8 * MiB);
    const controller = new AbortController();
    const writer = await driver.writer(path, false, { signal: controller.signal });
    const write = writer.write(content);
    setImmediate(() => controller.abort());
    await assert.rejects(write, { code: DriverErrorCode.Aborted });
    await writer.close();
    const resumed = await driver.writer(path, true);
    // Without the abort reaching the request, the write would have gone on to the end (8 MiB).
    assert.equal(resumed.size, MiB, "one block buffered, none staged past the abort");
    await resumed.commit();
    assert.ok(Buffer.from(await driver.getContent(path)).equals(content.subarray(0, MiB)));
  });

  it("resumes a closed writer from another driver instance, across block boundaries", async () => {
    // Small blocks so that each session ends with a partial block.
    const first = await azureDriver({ chunksize: MiB });
    const second = await azureDriver({ chunksize: MiB });
    const path = `/resume-${unique()}/_uploads/data`;
    const sessions = [randomBytes(2 * MiB + 5), randomBytes(MiB - 3), randomBytes(10)];

    const opening = await first.writer(path, false);
    await opening.write(sessions[0]!);
    await opening.close();

    const resumed = await second.writer(path, true);
    assert.equal(resumed.size, sessions[0]!.length);
    await resumed.write(sessions[1]!);
    await resumed.close();

    const last = await first.writer(path, true);
    assert.equal(last.size, sessions[0]!.length + sessions[1]!.length);
    await last.write(sessions[2]!);
    await last.commit();

    const content = Buffer.concat(sessions);
    assert.ok(Buffer.from(await second.getContent(path)).equals(content), "committed content");
    await assert.rejects(second.writer(path, true), { code: DriverErrorCode.PathNotFound });
    await first.delete(path.slice(0, path.indexOf("/", 1)));
  });

  it("commits an empty resumed writer, after which nothing resumes", async () => {
    const driver = await azureDriver();
    const dir = `/empty-${unique()}`;
    const path = `${dir}/data`;
    const opening = await driver.writer(path, false);
    await opening.close();
    const resumed = await driver.writer(path, true);
    assert.equal(resumed.size, 0);
    await resumed.commit();
    assert.equal((await driver.getContent(path)).length, 0);
    await assert.rejects(driver.writer(path, true), { code: DriverErrorCode.PathNotFound });
    await driver.delete(dir);
  });

  it("keeps a committed blob serving its content while a writer stages over it", async () => {
    const driver = await azureDriver();
    const dir = `/staging-${unique()}`;
    const path = `${dir}/file`;
    const old = randomBytes(1000);
    await driver.putContent(path, old);
    const writer = await driver.writer(path, false);
    await writer.write(randomBytes(3 * MiB));
    await writer.close();
    assert.ok(Buffer.from(await driver.getContent(path)).equals(old), "old content while closed");
    assert.equal((await driver.stat(path)).size, old.length);
    const resumed = await driver.writer(path, true);
    await resumed.cancel();
    assert.ok(Buffer.from(await driver.getContent(path)).equals(old), "old content after cancel");
    await driver.delete(dir);
  });

  it("reads an append blob, as older distribution wrote, and replaces it with putContent", async () => {
    const driver = await azureDriver();
    const dir = `/legacy-${unique()}`;
    const service = new BlobServiceClient(
      azurite.serviceUrl,
      new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey),
    );
    const append = service
      .getContainerClient(CONTAINER)
      .getAppendBlobClient(`${dir.slice(1)}/link`);
    await append.create();
    await append.appendBlock("sha256:old", 10);
    assert.equal(Buffer.from(await driver.getContent(`${dir}/link`)).toString(), "sha256:old");
    await driver.putContent(`${dir}/link`, Buffer.from("sha256:new"));
    assert.equal(Buffer.from(await driver.getContent(`${dir}/link`)).toString(), "sha256:new");
    assert.equal((await append.getProperties()).blobType, "BlockBlob");
    await driver.delete(dir);
  });

  it("gives a read-only SAS URL that plain fetch can GET", async () => {
    const driver = await azureDriver();
    const dir = `/sas-${unique()}`;
    const path = `${dir}/blob`;
    const content = randomBytes(5000);
    await driver.putContent(path, content);
    const url = await driver.redirectURL(path, { expiresIn: 60 });
    assert.ok(url !== null, "a driver with an account key signs URLs");
    assert.match(url, /[?&]sig=/);
    assert.match(url, /[?&]sp=r(&|$)/, "read permission only");

    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.ok(Buffer.from(await response.arrayBuffer()).equals(content), "fetched bytes");

    const write = await fetch(url, {
      method: "PUT",
      headers: { "x-ms-blob-type": "BlockBlob" },
      body: "overwritten",
    });
    await write.arrayBuffer();
    assert.equal(write.status, 403, "the URL does not allow writing");
    assert.ok(Buffer.from(await driver.getContent(path)).equals(content), "content unchanged");
    await driver.delete(dir);
  });

  it("creates its container on the first write and reads a missing one as empty", async () => {
    const container = `lazy-${unique()}`;
    const driver = await azureDriver({ container });
    assert.deepEqual(await driver.list("/"), []);
    assert.equal((await driver.stat("/")).isDir, true);
    await assert.rejects(driver.getContent("/nothing"), { code: DriverErrorCode.PathNotFound });
    await driver.putContent("/first/file", Buffer.from("hello"));
    assert.equal(Buffer.from(await driver.getContent("/first/file")).toString(), "hello");
    await driver.delete("/first");
  });

  it("stores everything below rootdirectory", async () => {
    const root = `roots/${unique()}`;
    const driver = await azureDriver({ rootdirectory: `/${root}/` });
    const sibling = await azureDriver({ rootdirectory: `roots/${unique()}` });
    await driver.putContent("/a/b", Buffer.from("x"));
    const writer = await driver.writer("/a/c", false);
    await writer.write(Buffer.from("yz"));
    await writer.commit();

    const service = new BlobServiceClient(
      azurite.serviceUrl,
      new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey),
    );
    const names: string[] = [];
    for await (const blob of service
      .getContainerClient(CONTAINER)
      .listBlobsFlat({ prefix: "roots/" })) {
      names.push(blob.name);
    }
    assert.deepEqual(names.sort(), [`${root}/a/b`, `${root}/a/c`]);
    assert.deepEqual((await driver.list("/a")).sort(), ["/a/b", "/a/c"]);
    assert.deepEqual(await sibling.list("/"), [], "another root sees nothing");
    const walked: string[] = [];
    await driver.walk("/", (info) => {
      walked.push(info.path);
    });
    assert.deepEqual(walked, ["/a", "/a/b", "/a/c"]);
    assert.equal(Buffer.from(await buffer(await driver.reader("/a/c", 1))).toString(), "z");
    await driver.delete("/a");
  });

  it("rejects missing or malformed parameters, naming them", async () => {
    const cases: [DriverParameters, string][] = [
      [{ accountname: undefined }, "accountname"],
      [{ accountname: "Not_An_Account" }, "accountname"],
      [{ container: undefined }, "container"],
      [{ container: "Upper" }, "container"],
      [{ container: "a--b" }, "container"],
      [{ accountkey: "not base64!" }, "accountkey"],
      [{ serviceurl: "ftp://example.com" }, "serviceurl"],
      [{ serviceurl: "not a url" }, "serviceurl"],
      [{ serviceurl: undefined, realm: "bad realm/" }, "realm"],
      [{ rootdirectory: "a/../b" }, "rootdirectory"],
      [{ chunksize: 1024 }, "chunksize"],
      [{ chunksize: "lots" }, "chunksize"],
    ];
    for (const [change, parameter] of cases) {
      await assert.rejects(
        createDriver("azure", { ...parameters(), ...change }),
        (error: { code?: string; parameter?: string; message?: string }) => {
          assert.equal(error.code, DriverErrorCode.InvalidParameter, JSON.stringify(change));
          assert.equal(error.parameter, parameter, JSON.stringify(change));
          assert.ok(error.message?.includes(parameter), error.message);
          return true;
        },
      );
    }
  });

  it("is created without an account key (identity credential) and without a service URL", async () => {
    const driver = await createDriver("azure", {
      accountname: "someaccount",
      container: "registry",
      realm: "core.chinacloudapi.cn",
      chunksize: "4194304",
    });
    assert.equal(driver.name, "azure");
  });
});
