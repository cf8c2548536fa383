// Berth's extension endpoint for the UI, /v2/_berth/tags/<name>: one page of tags with digest,
// push time, media type, size and platforms; paging as the tags list pages; the tags list's access
// rule (pull) and whether the caller may delete.

import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeHtpasswd } from "../testing/auth.js";
import {
  basicAuthorization,
  errorCode,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";
import {
  buildArtifact,
  buildImage,
  buildIndex,
  pushBlob,
  pushImage,
  pushIndex,
} from "../testing/images.js";
import { skipUnlessCommands } from "../testing/tools.js";
import type { RepositoryUsagePage, TagDetailsPage } from "./index.js";

describe("GET /v2/_berth/tags/<name>", () => {
  let registry: TestRegistry;
  const image = buildImage({ layers: 2, architecture: "arm64", os: "linux" });
  const index = buildIndex({ layers: 1 });
  const sbomArtifact = buildArtifact({
    artifactType: "application/spdx+json",
    subject: image.manifest,
  });
  before(async () => {
    registry = await startTestRegistry({ deleteEnabled: false });
    const repository = registry.storage.repository("team/app");
    await pushImage(repository, image, "a-image");
    await pushIndex(repository, index, "b-index");
    const artifact = sbomArtifact;
    for (const blob of artifact.blobs) await pushBlob(repository, blob);
    await repository.manifests.put(artifact.manifest.bytes, artifact.manifest.mediaType, {
      tag: "c-sbom",
    });
  });
  after(() => registry.close());

  it("describes each tag: digest, push time, media type, size and platforms", async () => {
    const started = Date.now();
    const response = await registry.fetch("/v2/_berth/tags/team/app");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("link"), null);
    const page = (await response.json()) as TagDetailsPage;
    assert.equal(page.name, "team/app");
    assert.equal(page.deleteEnabled, false);
    assert.equal(page.mayDelete, false);
    assert.deepEqual(
      page.tags.map((tag) => tag.name),
      ["a-image", "b-index", "c-sbom"],
    );
    const [single, multi, sbom] = page.tags;
    assert.equal(single!.digest, image.manifest.digest);
    assert.equal(single!.mediaType, "application/vnd.oci.image.manifest.v1+json");
    const imageSize =
      image.manifest.size + image.config.size + image.layers.reduce((sum, l) => sum + l.size, 0);
    assert.equal(single!.size, imageSize);
    assert.deepEqual(single!.platforms, [{ os: "linux", architecture: "arm64" }]);
    // Pushed moments ago (the link's modification time, to the second or better).
    const pushed = Date.parse(single!.pushedAt);
    assert.ok(pushed <= Date.now() && pushed > started - 10 * 60_000, single!.pushedAt);

    assert.equal(multi!.digest, index.index.digest);
    assert.equal(multi!.mediaType, "application/vnd.oci.image.index.v1+json");
    assert.deepEqual(multi!.platforms, [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ]);
    const children = index.images.reduce(
      (sum, child) =>
        sum +
        child.manifest.size +
        child.config.size +
        child.layers.reduce((total, l) => total + l.size, 0),
      0,
    );
    assert.equal(multi!.size, index.index.size + children);
    assert.equal(sbom!.artifactType, "application/spdx+json");
    assert.deepEqual(sbom!.platforms, []);
  });

  it("pages with n and last, and a Link to the next page", async () => {
    const first = await registry.fetch("/v2/_berth/tags/team/app?n=2");
    assert.equal(
      first.headers.get("link"),
      '</v2/_berth/tags/team/app?n=2&last=b-index>; rel="next"',
    );
    assert.deepEqual(
      ((await first.json()) as TagDetailsPage).tags.map((tag) => tag.name),
      ["a-image", "b-index"],
    );
    const second = await registry.fetch("/v2/_berth/tags/team/app?n=2&last=b-index");
    assert.equal(second.headers.get("link"), null);
    assert.deepEqual(
      ((await second.json()) as TagDetailsPage).tags.map((tag) => tag.name),
      ["c-sbom"],
    );
    const none = await registry.fetch("/v2/_berth/tags/team/app?n=0");
    assert.deepEqual(((await none.json()) as TagDetailsPage).tags, []);
  });

  it("sums the repository's distinct blobs and manifests in /v2/_berth/usage/<name>", async () => {
    const response = await registry.fetch("/v2/_berth/usage/team/app");
    assert.equal(response.status, 200);
    const usage = (await response.json()) as RepositoryUsagePage;
    // The image, the index's two images, the SBOM (the empty config and itself) and the index.
    const images = [image, ...index.images];
    const blobs = new Map<string, number>();
    for (const item of images.flatMap((i) => [i.manifest, i.config, ...i.layers])) {
      blobs.set(item.digest, item.size);
    }
    blobs.set(index.index.digest, index.index.size);
    for (const item of [sbomArtifact.manifest, ...sbomArtifact.blobs])
      blobs.set(item.digest, item.size);
    const bytes = [...blobs.values()].reduce((sum, size) => sum + size, 0);
    assert.deepEqual(usage, { name: "team/app", blobs: blobs.size, bytes });
    const unknown = await registry.fetch("/v2/_berth/usage/team/nothing");
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), "NAME_UNKNOWN");
  });

  it("refuses bad input with the spec's codes", async () => {
    const tooMany = await registry.fetch("/v2/_berth/tags/team/app?n=101");
    assert.equal(tooMany.status, 400);
    assert.equal(await errorCode(tooMany), "PAGINATION_NUMBER_INVALID");
    const unknown = await registry.fetch("/v2/_berth/tags/team/nothing");
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), "NAME_UNKNOWN");
    const invalid = await registry.fetch("/v2/_berth/tags/Team/App");
    assert.equal(invalid.status, 400);
    assert.equal(await errorCode(invalid), "NAME_INVALID");
    const put = await registry.fetch("/v2/_berth/tags/team/app", { method: "PUT" });
    assert.equal(put.status, 405);
    assert.equal(put.headers.get("allow"), "GET, HEAD");
    const empty = await registry.fetch("/v2/_berth/tags/");
    assert.equal(empty.status, 404);
  });

  it(
    "needs pull, and says whether the caller may delete",
    { skip: skipUnlessCommands(["htpasswd"], ["apache2-utils"]) },
    async () => {
      const directory = await mkdtemp(join(tmpdir(), "berth-ext-"));
      const users = join(directory, "htpasswd");
      await writeHtpasswd(users, { alice: "a", bob: "b" });
      const secured = await startTestRegistry({
        deleteEnabled: true,
        auth: {
          htpasswd: { realm: "berth", path: users },
          accesscontrol: {
            repositories: {
              "team/**": {
                policies: [
                  { users: ["alice"], actions: ["pull"] },
                  { users: ["bob"], actions: ["pull", "delete"] },
                ],
              },
            },
          },
        },
      });
      try {
        await pushImage(secured.storage.repository("team/app"), buildImage({ layers: 1 }), "v1");
        await pushImage(secured.storage.repository("other/app"), buildImage({ layers: 1 }), "v1");
        const as = (user: string, password: string, name: string) =>
          secured.fetch(`/v2/_berth/tags/${name}`, {
            headers: { Authorization: basicAuthorization(user, password) },
          });
        const anonymous = await secured.fetch("/v2/_berth/tags/team/app");
        assert.equal(anonymous.status, 401);
        assert.match(anonymous.headers.get("www-authenticate") ?? "", /^Basic realm="berth"/);
        const alice = (await (await as("alice", "a", "team/app")).json()) as TagDetailsPage;
        assert.deepEqual([alice.deleteEnabled, alice.mayDelete], [true, false]);
        const bob = (await (await as("bob", "b", "team/app")).json()) as TagDetailsPage;
        assert.deepEqual([bob.deleteEnabled, bob.mayDelete], [true, true]);
        const denied = await as("alice", "a", "other/app");
        assert.equal(denied.status, 403);
        assert.equal(await errorCode(denied), "DENIED");
      } finally {
        await secured.close();
        await rm(directory, { recursive: true, force: true });
      }
    },
  );
});
