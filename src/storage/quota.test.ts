// Quotas in the storage layer (in memory): what counts (distinct blobs a namespace's manifests
// reference, a shared blob once per namespace), admission one at a time under concurrent PUTs,
// and counts dropped and redone after a delete.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InMemoryDriver } from "../driver/index.js";
import { buildImage, pushBlob, pushImage, type TestImage } from "../testing/images.js";
import { createRegistryStorage, isRegistryError, RegistryErrorCode } from "./index.js";

function imageBytes(image: TestImage): number {
  return [image.manifest, image.config, ...image.layers].reduce((sum, item) => sum + item.size, 0);
}

describe("storage quotas", () => {
  it("counts the distinct blobs a namespace's manifests reference", async () => {
    const registry = createRegistryStorage(new InMemoryDriver(), {
      deleteEnabled: true,
      quotas: [
        { repositories: ["team/**"], bytes: 10 * 1024 * 1024 },
        { repositories: ["other"], bytes: 10 * 1024 * 1024 },
      ],
    });
    const image = buildImage({ layers: 2, layerSize: 10_000 });
    await pushImage(registry.repository("team/a"), image, "v1");
    // The same image in a second repository of the namespace and in another namespace.
    await pushImage(registry.repository("team/b/c"), image, "v1");
    await pushImage(registry.repository("other"), image, "v1");
    // An uploaded blob no manifest references does not count.
    await pushBlob(registry.repository("team/a"), buildImage({ layers: 1 }).layers[0]!);
    const [team, other] = await registry.quotaUsage();
    assert.deepEqual(team, {
      repositories: ["team/**"],
      bytes: imageBytes(image),
      limit: 10 * 1024 * 1024,
      blobs: 4,
      repositoryCount: 2,
    });
    assert.equal(other!.bytes, imageBytes(image));
    await registry.repository("team/a").manifests.delete(image.manifest.digest);
    await registry.repository("team/b/c").manifests.delete(image.manifest.digest);
    assert.equal((await registry.quotaUsage())[0]!.bytes, 0);
  });

  it("admits concurrent PUTs one at a time: never over the limit", async () => {
    const images = Array.from({ length: 6 }, () => buildImage({ layers: 1, layerSize: 10_000 }));
    const limit = Math.floor(imageBytes(images[0]!) * 2.5);
    const registry = createRegistryStorage(new InMemoryDriver(), {
      quotas: [{ repositories: ["q/*"], bytes: limit }],
    });
    const results = await Promise.allSettled(
      images.map((image, i) => pushImage(registry.repository(`q/r${i % 2}`), image, `t${i}`)),
    );
    const refused = results.filter((result) => result.status === "rejected");
    assert.equal(refused.length, 4);
    for (const result of refused) {
      const reason = result.reason as unknown;
      assert.ok(isRegistryError(reason, RegistryErrorCode.Denied), String(reason));
      assert.match(
        (reason as Error).message,
        /quota exceeded for q\/\*: .* used \+ .* new > limit/,
      );
    }
    const [usage] = await registry.quotaUsage();
    assert.ok(usage!.bytes <= limit);
    assert.equal(usage!.bytes, imageBytes(images[0]!) * 2);
    // A repository no quota covers is not limited.
    await pushImage(registry.repository("free"), images[5]!, "t");
  });
});
