// One concern over 400 lines: the workflows share one registry and state in the suite's order.
// The OCI distribution-spec conformance suite's four workflows (pull, push, content discovery,
// content management), replayed in its order against one registry with deleting enabled: the same
// requests, headers and content shapes (Go's MarshalIndent output, descriptors carrying `data` and
// an unknown `newUnspecifiedField`), and the statuses the suite accepts. The suite itself is Go and
// runs against Berth from outside the project; this keeps what it checks under `npm test`.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import {
  basicAuthorization,
  errorCode,
  OCI_INDEX,
  OCI_MANIFEST,
  sha256,
  SPEC_ERROR_CODES,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";

const NAME = "conformance/main";
const CROSSMOUNT = `conformance-${randomUUID()}`;

/** What Go's json.MarshalIndent(v, "", "\t") gives for these plain objects. */
function marshal(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, "\t"));
}

interface TestBlob {
  content: Buffer;
  digest: string;
}

function blob(content: Buffer): TestBlob {
  return { content, digest: sha256(content) };
}

/** A descriptor as the suite's Go struct marshals it: `newUnspecifiedField` always present. */
function descriptor(
  mediaType: string,
  of: TestBlob,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    mediaType,
    digest: of.digest,
    size: of.content.length,
    ...extra,
    newUnspecifiedField: null,
  };
}

const layer = blob(
  Buffer.from(
    "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0" +
      "WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qD" +
      "jMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA",
    "base64",
  ),
);
const configs = [0, 1, 2, 3, 4].map((i) =>
  blob(
    marshal({
      author: `${randomUUID().slice(0, 16)}${i}`,
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    }),
  ),
);
const manifests = configs.map((config) =>
  blob(
    marshal({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: descriptor("application/vnd.oci.image.config.v1+json", config, {
        data: config.content.toString("base64"),
        newUnspecifiedField: Buffer.from("hello world").toString("base64"),
      }),
      layers: [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    }),
  ),
);
const emptyLayerManifest = blob(
  marshal({
    schemaVersion: 2,
    config: {
      ...descriptor("application/vnd.oci.image.config.v1+json", configs[1]!, {
        data: configs[1]!.content.toString("base64"),
      }),
      newUnspecifiedField: Buffer.from("hello world").toString("base64"),
    },
    layers: [],
  }),
);

let registry: TestRegistry;
let authDir: string;

// With auth on, as the suite runs with OCI_USERNAME/OCI_PASSWORD: Basic credentials on every request.
before(async () => {
  authDir = await mkdtemp(join(tmpdir(), "berth-conformance-"));
  const htpasswd = join(authDir, "htpasswd");
  await writeFile(htpasswd, `oci:${await bcrypt.hash("oci-password", 5)}\n`);
  registry = await startTestRegistry({
    deleteEnabled: true,
    auth: { htpasswd: { realm: "conformance", path: htpasswd } },
    authorization: basicAuthorization("oci", "oci-password"),
  });
  const anonymous = await fetch(`${registry.url}/v2/`);
  assert.equal(anonymous.status, 401, "auth is on");
});
after(async () => {
  await registry.close();
  await rm(authDir, { recursive: true, force: true });
});

function request(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string; name?: string } = {},
): Promise<Response> {
  const resolved = path.replace("<name>", options.name ?? NAME);
  return registry.fetch(resolved, { method, headers: options.headers, body: options.body });
}

function expectStatus(response: Response, ...allowed: number[]): void {
  assert.ok(
    allowed.includes(response.status),
    `${response.url}: ${response.status} not in ${allowed.join(", ")}`,
  );
}

const is2xx = (response: Response): void =>
  assert.ok(response.status >= 200 && response.status < 300, `${response.url}: ${response.status}`);

/** The suite's setup step: POST for a session, then PUT the whole blob to its Location. */
async function populateBlob(of: TestBlob): Promise<void> {
  const started = await request("POST", "/v2/<name>/blobs/uploads/");
  const response = await registry.fetch(`${started.headers.get("location")}?digest=${of.digest}`, {
    method: "PUT",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(of.content.length),
    },
    body: of.content,
  });
  is2xx(response);
}

function putManifest(
  reference: string,
  content: Buffer,
  mediaType = OCI_MANIFEST,
): Promise<Response> {
  return request("PUT", `/v2/<name>/manifests/${reference}`, {
    headers: { "Content-Type": mediaType },
    body: content,
  });
}

test("pull workflow", async () => {
  await populateBlob(configs[0]!);
  await populateBlob(configs[1]!);
  await populateBlob(layer);
  is2xx(await putManifest("tagtest0", manifests[0]!.content));
  is2xx(await putManifest(manifests[1]!.digest, manifests[1]!.content));

  const dummy = sha256("hello world");
  expectStatus(await request("HEAD", `/v2/<name>/blobs/${dummy}`), 404);
  const headBlob = await request("HEAD", `/v2/<name>/blobs/${configs[0]!.digest}`);
  expectStatus(headBlob, 200);
  assert.equal(headBlob.headers.get("docker-content-digest"), configs[0]!.digest);
  expectStatus(await request("GET", `/v2/<name>/blobs/${dummy}`), 404);
  const getBlob = await request("GET", `/v2/<name>/blobs/${configs[0]!.digest}`);
  expectStatus(getBlob, 200);
  assert.deepEqual(Buffer.from(await getBlob.arrayBuffer()), configs[0]!.content);

  const accept = { Accept: OCI_MANIFEST };
  expectStatus(await request("HEAD", "/v2/<name>/manifests/.INVALID_MANIFEST_NAME"), 404);
  for (const [reference, expected] of [
    [manifests[0]!.digest, manifests[0]!.digest],
    [manifests[1]!.digest, manifests[1]!.digest],
    ["tagtest0", manifests[0]!.digest],
  ] as const) {
    const head = await request("HEAD", `/v2/<name>/manifests/${reference}`, { headers: accept });
    expectStatus(head, 200);
    assert.equal(head.headers.get("docker-content-digest"), expected);
    const get = await request("GET", `/v2/<name>/manifests/${reference}`, { headers: accept });
    expectStatus(get, 200);
    assert.equal(sha256(Buffer.from(await get.arrayBuffer())), expected);
  }
  expectStatus(await request("GET", "/v2/<name>/manifests/.INVALID_MANIFEST_NAME"), 404);

  // Error codes: a GET with a bogus digest reference (and, as the older suite does, a PUT).
  for (const method of ["GET", "PUT"]) {
    const response = await request(method, "/v2/<name>/manifests/sha256:totallywrong", {
      headers: { "Content-Type": OCI_MANIFEST },
      body: method === "PUT" ? "blablabla" : undefined,
    });
    expectStatus(response, 400);
    assert.ok(SPEC_ERROR_CODES.includes(await errorCode(response)));
  }

  // Teardown, manifests before blobs (the suite's default).
  for (const manifest of manifests.slice(0, 2)) {
    expectStatus(await request("DELETE", `/v2/<name>/manifests/${manifest.digest}`), 202);
  }
  for (const of of [configs[0]!, configs[1]!, layer]) {
    expectStatus(await request("DELETE", `/v2/<name>/blobs/${of.digest}`), 202, 404);
  }
});

test("push workflow", async () => {
  const blobA = blob(randomBytes(42));
  const blobB = blob(randomBytes(42));
  const chunk1 = blobB.content.subarray(0, 22);
  const chunk2 = blobB.content.subarray(22);

  // Blob upload streamed.
  let response = await request("POST", "/v2/<name>/blobs/uploads/");
  assert.ok(response.headers.get("location"));
  response = await registry.fetch(response.headers.get("location")!, {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream" },
    body: blobA.content,
  });
  expectStatus(response, 202);
  response = await registry.fetch(`${response.headers.get("location")}?digest=${blobA.digest}`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", "Content-Length": "0" },
  });
  expectStatus(response, 201);
  assert.ok(response.headers.get("location"));

  // Blob upload monolithic.
  expectStatus(await request("GET", `/v2/<name>/blobs/${sha256("hello world")}`), 404);
  response = await request("POST", `/v2/<name>/blobs/uploads/?digest=${configs[1]!.digest}`, {
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(configs[1]!.content.length),
    },
    body: configs[1]!.content,
  });
  expectStatus(response, 201);
  assert.ok(response.headers.get("location"));
  expectStatus(await request("GET", `/v2/<name>/blobs/${configs[1]!.digest}`), 200);
  response = await request("POST", "/v2/<name>/blobs/uploads/");
  expectStatus(response, 202);
  response = await registry.fetch(
    `${response.headers.get("location")}?digest=${configs[1]!.digest}`,
    {
      method: "PUT",
      headers: {
        "Content-Type": "application/octet-stream",
        "Content-Length": String(configs[1]!.content.length),
      },
      body: configs[1]!.content,
    },
  );
  expectStatus(response, 201);
  assert.ok(response.headers.get("location"));
  await populateBlob(layer);
  expectStatus(await request("GET", `/v2/<name>/blobs/${layer.digest}`), 200);

  // Blob upload chunked.
  response = await request("POST", "/v2/<name>/blobs/uploads/", {
    headers: { "Content-Length": "0" },
  });
  const outOfOrder = await registry.fetch(response.headers.get("location")!, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": "20",
      "Content-Range": "22-41",
    },
    body: chunk2,
  });
  expectStatus(outOfOrder, 416);
  const session = await request("POST", "/v2/<name>/blobs/uploads/", {
    headers: { "Content-Length": "0" },
  });
  response = await registry.fetch(session.headers.get("location")!, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": "22",
      "Content-Range": "0-21",
    },
    body: chunk1,
  });
  expectStatus(response, 202);
  assert.equal(response.headers.get("range"), "0-21");
  const retried = await registry.fetch(session.headers.get("location")!, {
    method: "PATCH",
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Length": "22",
      "Content-Range": "0-21",
    },
    body: chunk1,
  });
  expectStatus(retried, 416);
  const stale = await registry.fetch(session.headers.get("location")!);
  expectStatus(stale, 204);
  assert.ok(stale.headers.get("location"));
  assert.equal(stale.headers.get("range"), "0-21");
  response = await registry.fetch(stale.headers.get("location")!, {
    method: "PATCH",
    headers: {
      "Content-Length": "20",
      "Content-Range": "22-41",
      "Content-Type": "application/octet-stream",
    },
    body: chunk2,
  });
  expectStatus(response, 202);
  response = await registry.fetch(`${response.headers.get("location")}?digest=${blobB.digest}`, {
    method: "PUT",
    headers: { "Content-Length": "0", "Content-Type": "application/octet-stream" },
  });
  expectStatus(response, 201);
  assert.ok(response.headers.get("location"));

  // Cross-repository blob mount.
  response = await request("POST", `/v2/<name>/blobs/uploads/?mount=${sha256("hello world")}`, {
    name: CROSSMOUNT,
  });
  expectStatus(response, 202);
  assert.ok(response.headers.get("location"));
  response = await request("POST", `/v2/<name>/blobs/uploads/?mount=${blobA.digest}&from=${NAME}`, {
    name: CROSSMOUNT,
  });
  expectStatus(response, 201);
  assert.equal(response.headers.get("location"), `/v2/${CROSSMOUNT}/blobs/${blobA.digest}`);
  expectStatus(await registry.fetch(response.headers.get("location")!), 200);
  // Without `from`, Berth finds the blob itself (automatic content discovery): the suite's
  // OCI_AUTOMATIC_CROSSMOUNT=1 check, and the newer runner's "mount anonymous".
  expectStatus(
    await request("POST", `/v2/<name>/blobs/uploads/?mount=${blobA.digest}`, { name: CROSSMOUNT }),
    201,
  );

  // Manifest upload.
  expectStatus(await request("GET", "/v2/<name>/manifests/.INVALID_MANIFEST_NAME"), 404);
  for (const tag of ["test0", "test1", "test2", "test3"]) {
    response = await putManifest(tag, manifests[1]!.content);
    expectStatus(response, 201);
    assert.ok(response.headers.get("location"));
  }
  response = await putManifest("emptylayer", emptyLayerManifest.content);
  expectStatus(response, 201);
  assert.ok(response.headers.get("location"));
  response = await request("GET", `/v2/<name>/manifests/${manifests[1]!.digest}`, {
    headers: { Accept: OCI_MANIFEST },
  });
  expectStatus(response, 200);

  // Teardown.
  expectStatus(await request("DELETE", `/v2/<name>/manifests/${manifests[1]!.digest}`), 202);
  expectStatus(await request("DELETE", `/v2/<name>/manifests/${emptyLayerManifest.digest}`), 202);
  for (const of of [configs[1]!, layer]) {
    expectStatus(await request("DELETE", `/v2/<name>/blobs/${of.digest}`), 202, 404);
  }
});

test("content discovery workflow", async () => {
  const key = "org.opencontainers.conformance.test";
  const emptyJSON = blob(Buffer.from("{}"));
  assert.equal(
    emptyJSON.digest,
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
  );
  const refBlobA = blob(Buffer.from("NHL Peanut Butter on my NHL bagel"));
  const refBlobB = blob(Buffer.from("NBA Strawberry Jam on my NBA croissant"));
  const typeA = "application/vnd.nhl.peanut.butter.bagel";
  const typeB = "application/vnd.nba.strawberry.jam.croissant";
  const emptyDescriptor = descriptor("application/vnd.oci.empty.v1+json", emptyJSON);
  const subjectOf = (of: TestBlob): Record<string, unknown> => descriptor(OCI_MANIFEST, of);
  const artifact = (fields: Record<string, unknown>): TestBlob =>
    blob(marshal({ schemaVersion: 2, mediaType: OCI_MANIFEST, ...fields }));

  const refAConfig = artifact({
    config: descriptor(typeA, refBlobA),
    layers: [emptyDescriptor],
    subject: subjectOf(manifests[4]!),
    annotations: { [key]: "test config a" },
  });
  const refBConfig = artifact({
    config: descriptor(typeB, refBlobB),
    layers: [emptyDescriptor],
    subject: subjectOf(manifests[4]!),
    annotations: { [key]: "test config b" },
  });
  const refALayer = artifact({
    artifactType: typeA,
    config: emptyDescriptor,
    layers: [descriptor(typeA, refBlobA)],
    subject: subjectOf(manifests[4]!),
    annotations: { [key]: "test layer a" },
  });
  const refBLayer = artifact({
    artifactType: typeB,
    config: emptyDescriptor,
    layers: [descriptor(typeB, refBlobB)],
    subject: subjectOf(manifests[4]!),
    annotations: { [key]: "test layer b" },
  });
  const refCLayer = artifact({
    artifactType: typeB,
    config: emptyDescriptor,
    layers: [descriptor(typeB, refBlobB)],
    subject: subjectOf(manifests[3]!),
  });
  const refIndex = blob(
    marshal({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      artifactType: "application/vnd.food.stand",
      manifests: [descriptor(OCI_MANIFEST, refAConfig), descriptor(OCI_MANIFEST, refALayer)],
      subject: subjectOf(manifests[4]!),
      annotations: { [key]: "test index" },
    }),
  );
  const annotations = new Map([
    [refAConfig.digest, "test config a"],
    [refBConfig.digest, "test config b"],
    [refALayer.digest, "test layer a"],
    [refBLayer.digest, "test layer b"],
    [refIndex.digest, "test index"],
  ]);

  // Setup.
  await populateBlob(configs[2]!);
  await populateBlob(layer);
  for (const tag of ["test0", "test1", "test2", "test3"])
    is2xx(await putManifest(tag, manifests[2]!.content));
  await populateBlob(emptyJSON);
  await populateBlob(refBlobA);
  // Referrers pushed before their subject exists.
  for (const [reference, content, mediaType] of [
    [refAConfig.digest, refAConfig.content, OCI_MANIFEST],
    [refALayer.digest, refALayer.content, OCI_MANIFEST],
    [refIndex.digest, refIndex.content, OCI_INDEX],
  ] as const) {
    const response = await putManifest(reference, content, mediaType);
    is2xx(response);
    assert.equal(response.headers.get("oci-subject"), manifests[4]!.digest);
  }
  await populateBlob(configs[4]!);
  await populateBlob(layer);
  is2xx(await putManifest("tagtest0", manifests[4]!.content));
  await populateBlob(refBlobB);
  for (const [of, subject] of [
    [refBConfig, manifests[4]!],
    [refBLayer, manifests[4]!],
    [refCLayer, manifests[3]!],
  ] as const) {
    const response = await putManifest(of.digest, of.content);
    is2xx(response);
    assert.equal(response.headers.get("oci-subject"), subject.digest);
  }

  // Listing tags.
  let response = await request("GET", "/v2/<name>/tags/list");
  expectStatus(response, 200);
  const tagList = ((await response.json()) as { tags: string[] }).tags;
  const half = Math.floor(tagList.length / 2);
  response = await request("GET", `/v2/<name>/tags/list?n=${half}`);
  expectStatus(response, 200);
  const firstPage = ((await response.json()) as { tags: string[] }).tags;
  assert.equal(firstPage.length, half);
  response = await request("GET", `/v2/<name>/tags/list?n=${half}&last=${firstPage[half - 1]}`);
  expectStatus(response, 200);
  const secondPage = ((await response.json()) as { tags: string[] }).tags;
  assert.ok(secondPage.length <= half);
  assert.ok(!secondPage.includes(firstPage[half - 1]!));

  // Listing referrers.
  interface Index {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  }
  response = await request("GET", `/v2/<name>/referrers/${sha256("hello world")}`);
  expectStatus(response, 200);
  assert.equal(response.headers.get("content-type"), OCI_INDEX);
  assert.equal(((await response.json()) as Index).manifests.length, 0);

  response = await request("GET", `/v2/<name>/referrers/${manifests[4]!.digest}`);
  expectStatus(response, 200);
  assert.equal(response.headers.get("content-type"), OCI_INDEX);
  let index = (await response.json()) as Index;
  assert.equal(index.manifests.length, 5);
  assert.notEqual(index.manifests[0]!.digest, index.manifests[1]!.digest);
  for (const entry of index.manifests) {
    assert.equal(Object.keys(entry.annotations ?? {}).length, 1);
    assert.equal(entry.annotations?.[key], annotations.get(entry.digest));
  }

  response = await request(
    "GET",
    `/v2/<name>/referrers/${manifests[4]!.digest}?artifactType=${encodeURIComponent(typeA)}`,
  );
  expectStatus(response, 200);
  assert.equal(response.headers.get("content-type"), OCI_INDEX);
  assert.equal(response.headers.get("oci-filters-applied"), "artifactType");
  index = (await response.json()) as Index;
  assert.equal(index.manifests.length, 2);
  for (const entry of index.manifests)
    assert.equal(entry.annotations?.[key], annotations.get(entry.digest));

  response = await request("GET", `/v2/<name>/referrers/${manifests[3]!.digest}`);
  expectStatus(response, 200);
  index = (await response.json()) as Index;
  assert.deepEqual(
    index.manifests.map((entry) => entry.digest),
    [refCLayer.digest],
  );

  // Teardown: manifests (and a tag, via the digest path) before blobs; then the references'.
  for (const reference of [
    refIndex.digest,
    manifests[2]!.digest,
    manifests[4]!.digest,
    refAConfig.digest,
    refALayer.digest,
    "tagtest0",
    refBConfig.digest,
    refBLayer.digest,
    refCLayer.digest,
  ]) {
    expectStatus(await request("DELETE", `/v2/<name>/manifests/${reference}`), 202, 404, 405);
  }
  for (const of of [configs[2]!, layer])
    expectStatus(await request("DELETE", `/v2/<name>/blobs/${of.digest}`), 202);
  for (const of of [configs[4]!, refBlobA, refBlobB, emptyJSON]) {
    expectStatus(await request("DELETE", `/v2/<name>/blobs/${of.digest}`), 202, 404);
  }
});

test("content management workflow", async () => {
  await populateBlob(configs[3]!);
  await populateBlob(layer);
  is2xx(await putManifest("tagtest0", manifests[3]!.content));
  let response = await request("GET", "/v2/<name>/tags/list");
  expectStatus(response, 200);
  const before = ((await response.json()) as { tags: string[] }).tags.length;

  // Manifest delete: the tag, then the manifest by digest.
  expectStatus(await request("DELETE", "/v2/<name>/manifests/tagtest0"), 202);
  expectStatus(await request("DELETE", `/v2/<name>/manifests/${manifests[3]!.digest}`), 202);
  expectStatus(await request("GET", `/v2/<name>/manifests/${manifests[3]!.digest}`), 404);
  response = await request("GET", "/v2/<name>/tags/list");
  expectStatus(response, 200);
  assert.ok(((await response.json()) as { tags: string[] }).tags.length < before);

  // Blob delete.
  expectStatus(await request("DELETE", `/v2/<name>/blobs/${configs[3]!.digest}`), 202);
  expectStatus(await request("DELETE", `/v2/<name>/blobs/${layer.digest}`), 202);
  expectStatus(await request("GET", `/v2/<name>/blobs/${configs[3]!.digest}`), 404);
});

/** A body fetch sends without Content-Length (Transfer-Encoding: chunked). */
function chunkedBody(content: Buffer): { body: ReadableStream<Uint8Array>; duplex: "half" } {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(content);
      controller.close();
    },
  });
  return { body, duplex: "half" };
}

test("bodies without Content-Length, as the suite's Go clients send a reader", async () => {
  // The newer runner hands Go's http client a reader for streamed PATCHes and manifest PUTs, and
  // reggie before v0.6 did so for every body: they arrive chunked.
  const name = "conformance/chunked";
  const content = randomBytes(3000);
  const digest = sha256(content);
  const started = await registry.fetch(`/v2/${name}/blobs/uploads/`, { method: "POST" });
  expectStatus(started, 202);
  const patched = await registry.fetch(started.headers.get("location")!, {
    method: "PATCH",
    headers: { "Content-Type": "application/octet-stream" },
    ...chunkedBody(content),
  });
  expectStatus(patched, 202);
  assert.equal(patched.headers.get("range"), `0-${content.length - 1}`);
  const finished = await registry.fetch(`${patched.headers.get("location")}?digest=${digest}`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream" },
  });
  expectStatus(finished, 201);

  const monolithic = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux" }));
  const posted = await registry.fetch(`/v2/${name}/blobs/uploads/?digest=${sha256(monolithic)}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    ...chunkedBody(monolithic),
  });
  expectStatus(posted, 201);

  const manifest = marshal({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: descriptor("application/vnd.oci.image.config.v1+json", blob(monolithic)),
    layers: [descriptor("application/vnd.oci.image.layer.v1.tar", { content, digest })],
  });
  const put = await registry.fetch(`/v2/${name}/manifests/chunked`, {
    method: "PUT",
    headers: { "Content-Type": OCI_MANIFEST },
    ...chunkedBody(manifest),
  });
  expectStatus(put, 201);
  const got = await registry.fetch(put.headers.get("location")!, {
    headers: { Accept: OCI_MANIFEST },
  });
  expectStatus(got, 200);
  assert.deepEqual(Buffer.from(await got.arrayBuffer()), manifest);
});
