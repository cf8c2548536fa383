// HTTP tests of manifests: PUT by tag and by digest, GET/HEAD by tag and by digest, Accept
// negotiation, OCI-Subject, the error cases, and DELETE by digest and by tag.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  buildImage,
  DOCKER_MANIFEST,
  DOCKER_MANIFEST_LIST,
  errorCode,
  OCI_INDEX,
  OCI_MANIFEST,
  pushImage,
  putManifest,
  sha256,
  SPEC_ERROR_CODES,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";

let registry: TestRegistry;

before(async () => {
  registry = await startTestRegistry();
});
after(() => registry.close());

test("PUT by tag: 201 with Location by digest and Docker-Content-Digest; repeatable under more tags", async () => {
  const image = await buildImage(registry, "manifests/put", "put");
  for (const tag of ["test0", "test1", "test2", "test3"]) {
    const response = await putManifest(registry, "manifests/put", tag, image.content);
    assert.equal(response.status, 201, tag);
    assert.equal(response.headers.get("location"), `/v2/manifests/put/manifests/${image.digest}`);
    assert.equal(response.headers.get("docker-content-digest"), image.digest);
    assert.equal(response.headers.get("oci-subject"), null);
  }
});

test("GET and HEAD by tag and by digest serve the exact bytes with their headers", async () => {
  const image = await pushImage(registry, "manifests/get", "latest");
  for (const reference of ["latest", image.digest]) {
    const response = await registry.fetch(`/v2/manifests/get/manifests/${reference}`, {
      headers: { Accept: OCI_MANIFEST },
    });
    assert.equal(response.status, 200, reference);
    assert.equal(response.headers.get("content-type"), OCI_MANIFEST);
    assert.equal(response.headers.get("docker-content-digest"), image.digest);
    assert.equal(response.headers.get("content-length"), String(Buffer.byteLength(image.content)));
    assert.equal(await response.text(), image.content);

    const head = await registry.fetch(`/v2/manifests/get/manifests/${reference}`, {
      method: "HEAD",
      headers: { Accept: OCI_MANIFEST },
    });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("docker-content-digest"), image.digest);
    assert.equal(head.headers.get("content-length"), String(Buffer.byteLength(image.content)));
    assert.equal(await head.text(), "");
  }
  // No Accept at all (curl): served as stored.
  const plain = await registry.fetch("/v2/manifests/get/manifests/latest");
  assert.equal(plain.status, 200);
  assert.equal(plain.headers.get("content-type"), OCI_MANIFEST);
  await plain.arrayBuffer();
  // A percent-encoded digest works too.
  const encoded = await registry.fetch(
    `/v2/manifests/get/manifests/${image.digest.replace(":", "%3A")}`,
  );
  assert.equal(encoded.status, 200);
  await encoded.arrayBuffer();
  const cached = await registry.fetch("/v2/manifests/get/manifests/latest", {
    headers: { "If-None-Match": `"${image.digest}"` },
  });
  assert.equal(cached.status, 304);
});

test("unknown manifests are 404 MANIFEST_UNKNOWN, also for references that cannot be tags", async () => {
  await pushImage(registry, "manifests/unknown", "there");
  for (const reference of ["missing", ".INVALID_MANIFEST_NAME", sha256("nothing")]) {
    for (const method of ["GET", "HEAD"]) {
      const response = await registry.fetch(`/v2/manifests/unknown/manifests/${reference}`, {
        method,
        headers: { Accept: OCI_MANIFEST },
      });
      assert.equal(response.status, 404, `${method} ${reference}`);
      if (method === "GET") assert.equal(await errorCode(response), "MANIFEST_UNKNOWN");
    }
  }
  const malformed = await registry.fetch("/v2/manifests/unknown/manifests/sha256:totallywrong");
  assert.equal(malformed.status, 400);
  assert.equal(await errorCode(malformed), "DIGEST_INVALID");
});

test("PUT errors: bad digest reference, digest mismatch, invalid manifest, unknown blobs, bad tag", async () => {
  const image = await buildImage(registry, "manifests/errors", "errors");

  const totallyWrong = await putManifest(
    registry,
    "manifests/errors",
    "sha256:totallywrong",
    "blablabla",
  );
  assert.equal(totallyWrong.status, 400);
  assert.ok(SPEC_ERROR_CODES.includes(await errorCode(totallyWrong)));

  const mismatch = await putManifest(registry, "manifests/errors", sha256("other"), image.content);
  assert.equal(mismatch.status, 400);
  assert.equal(await errorCode(mismatch), "DIGEST_INVALID");

  const invalid = await putManifest(registry, "manifests/errors", "bad", "blablabla");
  assert.equal(invalid.status, 400);
  assert.equal(await errorCode(invalid), "MANIFEST_INVALID");

  const dangling = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: {
      mediaType: "application/vnd.oci.image.config.v1+json",
      digest: sha256("no config"),
      size: 9,
    },
    layers: [],
  });
  const unknownBlob = await putManifest(registry, "manifests/errors", "dangling", dangling);
  assert.equal(unknownBlob.status, 400);
  assert.equal(await errorCode(unknownBlob), "MANIFEST_BLOB_UNKNOWN");

  const badTag = await putManifest(registry, "manifests/errors", "-nope", image.content);
  assert.equal(badTag.status, 400);
  assert.equal(await errorCode(badTag), "TAG_INVALID");

  const byDigest = await putManifest(registry, "manifests/errors", image.digest, image.content);
  assert.equal(byDigest.status, 201);
  assert.equal(byDigest.headers.get("docker-content-digest"), image.digest);
});

test("a manifest over 4 MiB is refused with SIZE_INVALID, whether its length is declared or not", async () => {
  const huge = JSON.stringify({ schemaVersion: 2, padding: "x".repeat(4 * 1024 * 1024) });
  const declared = await putManifest(registry, "manifests/huge", "big", huge);
  assert.equal(declared.status, 400);
  assert.equal(await errorCode(declared), "SIZE_INVALID");

  // A chunked body: refused once more than 4 MiB have arrived.
  const chunk = Buffer.alloc(256 * 1024, "x");
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= 8 * 1024 * 1024) controller.close();
      else {
        sent += chunk.length;
        controller.enqueue(chunk);
      }
    },
  });
  const chunked = await registry
    .fetch("/v2/manifests/huge/manifests/big", {
      method: "PUT",
      headers: { "Content-Type": OCI_MANIFEST },
      body,
      duplex: "half",
    })
    .catch((error: unknown) => error);
  // The registry answers and closes the connection; the client may see either.
  if (chunked instanceof Response) {
    assert.equal(chunked.status, 400);
    assert.equal(await errorCode(chunked), "SIZE_INVALID");
  }
  assert.equal(
    (await registry.fetch("/v2/manifests/huge/manifests/big", { method: "HEAD" })).status,
    404,
  );
});

test("PUT of a manifest with a subject answers OCI-Subject, even when the subject is absent", async () => {
  const subject = await pushImage(registry, "manifests/subject", "base");
  const artifact = await buildImage(registry, "manifests/subject", "artifact", {
    subject: {
      mediaType: OCI_MANIFEST,
      digest: subject.digest,
      size: Buffer.byteLength(subject.content),
    },
  });
  const response = await putManifest(
    registry,
    "manifests/subject",
    artifact.digest,
    artifact.content,
  );
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("oci-subject"), subject.digest);

  const orphanSubject = sha256("never pushed manifest");
  const orphan = await buildImage(registry, "manifests/subject", "orphan", {
    subject: { mediaType: OCI_MANIFEST, digest: orphanSubject, size: 10 },
  });
  const orphanResponse = await putManifest(
    registry,
    "manifests/subject",
    orphan.digest,
    orphan.content,
  );
  assert.equal(orphanResponse.status, 201);
  assert.equal(orphanResponse.headers.get("oci-subject"), orphanSubject);
});

test("Accept negotiation: OCI manifests need an OCI Accept when the client lists manifest types", async () => {
  const image = await pushImage(registry, "manifests/accept", "oci");
  const dockerOnly = await registry.fetch("/v2/manifests/accept/manifests/oci", {
    headers: { Accept: DOCKER_MANIFEST },
  });
  assert.equal(dockerOnly.status, 404);
  assert.equal(await errorCode(dockerOnly), "MANIFEST_UNKNOWN");
  const several = await registry.fetch("/v2/manifests/accept/manifests/oci", {
    headers: { Accept: `${DOCKER_MANIFEST}, ${OCI_MANIFEST};q=0.5` },
  });
  assert.equal(several.status, 200);
  assert.equal(await several.text(), image.content);
  const wildcard = await registry.fetch("/v2/manifests/accept/manifests/oci", {
    headers: { Accept: "*/*" },
  });
  assert.equal(wildcard.status, 200);
  await wildcard.arrayBuffer();
});

test("Accept negotiation: a manifest list asked for by tag without list support gives linux/amd64", async () => {
  const name = "manifests/list";
  const amd64 = await buildImage(registry, name, "amd64", {}, DOCKER_MANIFEST);
  const arm64 = await buildImage(registry, name, "arm64", {}, DOCKER_MANIFEST);
  for (const image of [amd64, arm64]) {
    const pushed = await putManifest(registry, name, image.digest, image.content, DOCKER_MANIFEST);
    assert.equal(pushed.status, 201);
  }
  const list = JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST_LIST,
    manifests: [
      {
        mediaType: DOCKER_MANIFEST,
        digest: arm64.digest,
        size: Buffer.byteLength(arm64.content),
        platform: { architecture: "arm64", os: "linux" },
      },
      {
        mediaType: DOCKER_MANIFEST,
        digest: amd64.digest,
        size: Buffer.byteLength(amd64.content),
        platform: { architecture: "amd64", os: "linux" },
      },
    ],
  });
  const pushed = await putManifest(registry, name, "multi", list, DOCKER_MANIFEST_LIST);
  assert.equal(pushed.status, 201);

  const full = await registry.fetch(`/v2/${name}/manifests/multi`, {
    headers: { Accept: `${DOCKER_MANIFEST_LIST}, ${DOCKER_MANIFEST}` },
  });
  assert.equal(full.headers.get("content-type"), DOCKER_MANIFEST_LIST);
  assert.equal(await full.text(), list);

  const single = await registry.fetch(`/v2/${name}/manifests/multi`, {
    headers: { Accept: DOCKER_MANIFEST },
  });
  assert.equal(single.status, 200);
  assert.equal(single.headers.get("content-type"), DOCKER_MANIFEST);
  assert.equal(single.headers.get("docker-content-digest"), amd64.digest);
  assert.equal(await single.text(), amd64.content);

  const index = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  assert.equal((await putManifest(registry, name, "index", index, OCI_INDEX)).status, 201);
  const noIndex = await registry.fetch(`/v2/${name}/manifests/index`, {
    headers: { Accept: OCI_MANIFEST },
  });
  assert.equal(noIndex.status, 404);
  await noIndex.arrayBuffer();
});

test("DELETE by tag removes the tag only; by digest removes the manifest and its tags (202)", async () => {
  const name = "manifests/delete";
  const image = await pushImage(registry, name, "one");
  assert.equal((await putManifest(registry, name, "two", image.content)).status, 201);

  const untagged = await registry.fetch(`/v2/${name}/manifests/one`, { method: "DELETE" });
  assert.equal(untagged.status, 202);
  assert.equal((await registry.fetch(`/v2/${name}/manifests/one`, { method: "HEAD" })).status, 404);
  assert.equal(
    (await registry.fetch(`/v2/${name}/manifests/${image.digest}`, { method: "HEAD" })).status,
    200,
  );
  const tags = await registry.fetch(`/v2/${name}/tags/list`);
  assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ["two"]);

  const deleted = await registry.fetch(`/v2/${name}/manifests/${image.digest}`, {
    method: "DELETE",
  });
  assert.equal(deleted.status, 202);
  const gone = await registry.fetch(`/v2/${name}/manifests/${image.digest}`);
  assert.equal(gone.status, 404);
  assert.equal(await errorCode(gone), "MANIFEST_UNKNOWN");
  assert.equal((await registry.fetch(`/v2/${name}/manifests/two`, { method: "HEAD" })).status, 404);

  const again = await registry.fetch(`/v2/${name}/manifests/${image.digest}`, { method: "DELETE" });
  assert.equal(again.status, 404);
  assert.equal(await errorCode(again), "MANIFEST_UNKNOWN");
  const noTag = await registry.fetch(`/v2/${name}/manifests/nosuchtag`, { method: "DELETE" });
  assert.equal(noTag.status, 404);
  assert.equal(await errorCode(noTag), "MANIFEST_UNKNOWN");
  const malformed = await registry.fetch(`/v2/${name}/manifests/sha256:bad`, { method: "DELETE" });
  assert.equal(malformed.status, 400);
  assert.equal(await errorCode(malformed), "DIGEST_INVALID");
});

test("DELETE of manifests and tags is 405 UNSUPPORTED when deleting is disabled", async () => {
  const readOnly = await startTestRegistry({ deleteEnabled: false });
  try {
    const image = await pushImage(readOnly, "manifests/keep", "kept");
    for (const reference of ["kept", image.digest]) {
      const response = await readOnly.fetch(`/v2/manifests/keep/manifests/${reference}`, {
        method: "DELETE",
      });
      assert.equal(response.status, 405, reference);
      assert.equal(await errorCode(response), "UNSUPPORTED");
    }
    assert.equal(
      (await readOnly.fetch("/v2/manifests/keep/manifests/kept", { method: "HEAD" })).status,
      200,
    );
  } finally {
    await readOnly.close();
  }
});

/** `image`'s manifest with an extension field `x` holding `value` (raw JSON text). */
function withExtension(image: { content: string }, value: string): string {
  return `${image.content.slice(0, -1)},"x":${value}}`;
}

test("PUT of a manifest built to stall JSON.parse: MANIFEST_INVALID naming the limit, /v2/ served throughout (accepted before the fix)", async () => {
  const name = "manifests/costly";
  const image = await buildImage(registry, name, "costly");
  const size = 4 * 1024 * 1024 - image.content.length - 16;
  const depth = Math.floor(size / 2);
  const documents: [string, RegExp][] = [
    [withExtension(image, "[".repeat(depth) + "]".repeat(depth)), /nesting deeper than 64 levels/],
    [
      withExtension(image, `[${"{},".repeat(Math.floor(size / 3) - 1)}{}]`),
      /more than 100000 objects and arrays/,
    ],
    [
      withExtension(image, `[${"0,".repeat(Math.floor(size / 2) - 1)}0]`),
      /more than 300000 values/,
    ],
  ];
  // A legitimate deep-ish extension still passes: nesting and quoted brackets are counted right.
  const fine = withExtension(image, `${"[".repeat(60)}"]]]]{{{\\"[["${"]".repeat(60)}`);
  assert.equal((await putManifest(registry, name, "fine", fine)).status, 201);

  // Four clients flood the registry with them while another checks /v2/.
  let flooding = true;
  const clients = [0, 1, 2, 3].map(async (client) => {
    for (let round = 0; round < 3; round++) {
      const [content, limit] = documents[(client + round) % documents.length]!;
      const response = await putManifest(registry, name, `c${client}r${round}`, content);
      assert.equal(response.status, 400);
      const body = (await response.json()) as { errors: { code: string; message: string }[] };
      assert.equal(body.errors[0]!.code, "MANIFEST_INVALID");
      assert.match(body.errors[0]!.message, limit);
    }
  });
  const checks: number[] = [];
  const checker = (async () => {
    while (flooding) {
      checks.push((await registry.fetch("/v2/")).status);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();
  await Promise.all(clients);
  flooding = false;
  await checker;
  assert.ok(checks.length > 0);
  assert.ok(checks.every((status) => status === 200));
  const tags = await registry.fetch(`/v2/${name}/tags/list`);
  assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ["fine"]);
});
