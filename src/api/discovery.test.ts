// HTTP tests of content discovery: the tags list and the catalog with `n`/`last` and Link, and the
// referrers API with artifactType filtering, as the conformance suite's discovery workflow runs it.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  errorCode,
  OCI_INDEX,
  OCI_MANIFEST,
  pushBlob,
  pushImage,
  putManifest,
  sha256,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";

let registry: TestRegistry;

before(async () => {
  registry = await startTestRegistry();
});
after(() => registry.close());

interface TagList {
  name: string;
  tags: string[];
}

test("tags list: every tag, sorted, with n/last pagination and a Link while more remain", async () => {
  const name = "discovery/tags";
  const image = await pushImage(registry, name, "test0");
  for (const tag of ["test1", "test2", "test3", "alpha"]) {
    assert.equal((await putManifest(registry, name, tag, image.content)).status, 201);
  }
  const all = await registry.fetch(`/v2/${name}/tags/list`);
  assert.equal(all.status, 200);
  assert.match(all.headers.get("content-type")!, /^application\/json/);
  assert.equal(all.headers.get("link"), null);
  assert.deepEqual(await all.json(), { name, tags: ["alpha", "test0", "test1", "test2", "test3"] });

  const first = await registry.fetch(`/v2/${name}/tags/list?n=2`);
  assert.deepEqual(((await first.json()) as TagList).tags, ["alpha", "test0"]);
  assert.equal(first.headers.get("link"), `</v2/${name}/tags/list?n=2&last=test0>; rel="next"`);

  const second = await registry.fetch(`/v2/${name}/tags/list?n=2&last=test0`);
  assert.deepEqual(((await second.json()) as TagList).tags, ["test1", "test2"]);
  assert.ok(second.headers.get("link"));

  const end = await registry.fetch(`/v2/${name}/tags/list?n=2&last=test2`);
  assert.deepEqual(((await end.json()) as TagList).tags, ["test3"]);
  assert.equal(end.headers.get("link"), null);

  const none = await registry.fetch(`/v2/${name}/tags/list?n=0`);
  assert.deepEqual(((await none.json()) as TagList).tags, []);
  const past = await registry.fetch(`/v2/${name}/tags/list?last=zzz`);
  assert.deepEqual(((await past.json()) as TagList).tags, []);

  const badN = await registry.fetch(`/v2/${name}/tags/list?n=many`);
  assert.equal(badN.status, 400);
  assert.equal(await errorCode(badN), "PAGINATION_NUMBER_INVALID");
});

test("tags list of an unknown repository is 404 NAME_UNKNOWN", async () => {
  const response = await registry.fetch("/v2/discovery/nothing-here/tags/list");
  assert.equal(response.status, 404);
  assert.equal(await errorCode(response), "NAME_UNKNOWN");
});

test("catalog: repository names, sorted, paginated with Link", async () => {
  const catalogRegistry = await startTestRegistry();
  try {
    for (const name of ["c/three", "a/one", "b/two"])
      await pushImage(catalogRegistry, name, "latest");
    const all = await catalogRegistry.fetch("/v2/_catalog");
    assert.equal(all.status, 200);
    assert.deepEqual(await all.json(), { repositories: ["a/one", "b/two", "c/three"] });
    assert.equal(all.headers.get("link"), null);

    const first = await catalogRegistry.fetch("/v2/_catalog?n=2");
    assert.deepEqual(await first.json(), { repositories: ["a/one", "b/two"] });
    assert.equal(first.headers.get("link"), `</v2/_catalog?n=2&last=b%2Ftwo>; rel="next"`);
    const second = await catalogRegistry.fetch("/v2/_catalog?n=2&last=b%2Ftwo");
    assert.deepEqual(await second.json(), { repositories: ["c/three"] });
    assert.equal(second.headers.get("link"), null);
  } finally {
    await catalogRegistry.close();
  }
});

test("referrers: an OCI index of the manifests whose subject is the digest, filterable by artifactType", async () => {
  const name = "discovery/referrers";
  const subject = await pushImage(registry, name, "tagtest0");
  const subjectDescriptor = {
    mediaType: OCI_MANIFEST,
    digest: subject.digest,
    size: Buffer.byteLength(subject.content),
  };
  const empty = {
    mediaType: "application/vnd.oci.empty.v1+json",
    digest: await pushBlob(registry, name, "{}"),
    size: 2,
  };
  const payloadA = "NHL Peanut Butter on my NHL bagel";
  const payloadB = "NBA Strawberry Jam on my NBA croissant";
  const blobA = await pushBlob(registry, name, payloadA);
  const blobB = await pushBlob(registry, name, payloadB);
  const typeA = "application/vnd.nhl.peanut.butter.bagel";
  const typeB = "application/vnd.nba.strawberry.jam.croissant";
  const key = "org.opencontainers.conformance.test";

  // One artifact whose type is its config's media type, one with artifactType and an empty config.
  const byConfig = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: typeA, digest: blobA, size: payloadA.length },
    layers: [empty],
    subject: subjectDescriptor,
    annotations: { [key]: "test config a" },
  });
  const byArtifactType = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: typeB,
    config: empty,
    layers: [{ mediaType: typeB, digest: blobB, size: payloadB.length }],
    subject: subjectDescriptor,
    annotations: { [key]: "test layer b" },
  });
  for (const content of [byConfig, byArtifactType]) {
    const response = await putManifest(registry, name, sha256(content), content);
    assert.equal(response.status, 201);
    assert.equal(response.headers.get("oci-subject"), subject.digest);
  }
  const index = JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    artifactType: "application/vnd.food.stand",
    manifests: [
      { mediaType: OCI_MANIFEST, digest: sha256(byConfig), size: Buffer.byteLength(byConfig) },
    ],
    subject: subjectDescriptor,
    annotations: { [key]: "test index" },
  });
  const indexResponse = await putManifest(registry, name, sha256(index), index, OCI_INDEX);
  assert.equal(indexResponse.status, 201);
  assert.equal(indexResponse.headers.get("oci-subject"), subject.digest);

  interface Index {
    schemaVersion: number;
    mediaType: string;
    manifests: {
      digest: string;
      artifactType?: string;
      mediaType: string;
      size: number;
      annotations?: Record<string, string>;
    }[];
  }
  const all = await registry.fetch(`/v2/${name}/referrers/${subject.digest}`);
  assert.equal(all.status, 200);
  assert.equal(all.headers.get("content-type"), OCI_INDEX);
  assert.equal(all.headers.get("oci-filters-applied"), null);
  const listed = (await all.json()) as Index;
  assert.equal(listed.schemaVersion, 2);
  assert.equal(listed.mediaType, OCI_INDEX);
  const byDigest = new Map(listed.manifests.map((entry) => [entry.digest, entry]));
  assert.equal(byDigest.size, 3);
  assert.equal(byDigest.get(sha256(byConfig))?.artifactType, typeA);
  assert.equal(byDigest.get(sha256(byConfig))?.annotations?.[key], "test config a");
  assert.equal(byDigest.get(sha256(byArtifactType))?.artifactType, typeB);
  assert.equal(byDigest.get(sha256(byArtifactType))?.size, Buffer.byteLength(byArtifactType));
  assert.equal(byDigest.get(sha256(index))?.mediaType, OCI_INDEX);
  assert.equal(byDigest.get(sha256(index))?.artifactType, "application/vnd.food.stand");

  const filtered = await registry.fetch(
    `/v2/${name}/referrers/${subject.digest}?artifactType=${encodeURIComponent(typeA)}`,
  );
  assert.equal(filtered.status, 200);
  assert.equal(filtered.headers.get("oci-filters-applied"), "artifactType");
  const filteredIndex = (await filtered.json()) as Index;
  assert.deepEqual(
    filteredIndex.manifests.map((entry) => entry.digest),
    [sha256(byConfig)],
  );
});

test("referrers of a digest nobody refers to, or in an unknown repository, is an empty index", async () => {
  for (const name of ["discovery/referrers-none", "discovery/no-such-repository"]) {
    if (name.endsWith("none")) await pushImage(registry, name, "latest");
    const response = await registry.fetch(`/v2/${name}/referrers/${sha256("hello world")}`);
    assert.equal(response.status, 200, name);
    assert.equal(response.headers.get("content-type"), OCI_INDEX);
    assert.deepEqual(await response.json(), {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [],
    });
  }
});

test("referrers with a malformed digest is 400 DIGEST_INVALID", async () => {
  const response = await registry.fetch("/v2/discovery/referrers/referrers/sha256:nothex");
  assert.equal(response.status, 400);
  assert.equal(await errorCode(response), "DIGEST_INVALID");
});
