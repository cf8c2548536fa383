// End to end on Azure Blob Storage: Berth started from a config whose storage is `storage.azure`
// on Azurite, an image pushed and pulled over the registry's HTTP API, and blob GETs answered by a
// 307 to a SAS URL of Azurite that a plain HTTP client can follow. A second Berth on the same
// container with `storage.redirect.disable` serves the same blobs itself.

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ConfigError, resolveConfig } from "../config/index.js";
import { startAzurite, type Azurite } from "../testing/azurite.js";
import { buildImage, sha256, type Content } from "../testing/images.js";
import { assertBlobRedirects } from "../testing/redirects.js";
import { startRegistry, type RunningRegistry } from "./index.js";

const CONTAINER = "berth-e2e";
const ROOT = "registry/root";
const REPOSITORY = "e2e/image";

/** Pushes `blob` into `repository` with a POST and a PUT carrying the bytes. */
async function pushBlob(registry: RunningRegistry, blob: Content): Promise<void> {
  const started = await fetch(`${registry.url}/v2/${REPOSITORY}/blobs/uploads/`, {
    method: "POST",
  });
  assert.equal(started.status, 202);
  const location = new URL(started.headers.get("location")!, registry.url);
  location.searchParams.set("digest", blob.digest);
  const finished = await fetch(location, {
    method: "PUT",
    headers: { "content-type": "application/octet-stream" },
    body: blob.bytes,
  });
  assert.equal(finished.status, 201, await finished.text());
}

describe("azure storage on Azurite, end to end", () => {
  let azurite: Azurite;
  let redirecting: RunningRegistry;
  let direct: RunningRegistry;
  const image = buildImage({ layers: 2, gzip: true, layerSize: 512 * 1024 });

  before(async () => {
    azurite = await startAzurite();
    await azurite.createContainer(CONTAINER);
    // config.yml's shape; the account key comes from the environment, as a secret would.
    const tree = {
      version: "0.1",
      log: { level: "warn" },
      storage: {
        azure: {
          accountname: azurite.accountName,
          container: CONTAINER,
          serviceurl: azurite.serviceUrl,
          rootdirectory: `/${ROOT}`,
        },
      },
      http: { addr: "127.0.0.1:0" },
    };
    const environment = { REGISTRY_STORAGE_AZURE_ACCOUNTKEY: azurite.accountKey };
    redirecting = await startRegistry({ config: resolveConfig(tree, environment) });
    direct = await startRegistry({
      config: resolveConfig(tree, { ...environment, REGISTRY_STORAGE_REDIRECT_DISABLE: "true" }),
    });
  });

  after(async () => {
    await redirecting?.close();
    await direct?.close();
    await azurite?.stop();
  });

  it("pushes an image and pulls its manifest by tag, never redirected", async () => {
    for (const blob of [...image.layers, image.config]) await pushBlob(redirecting, blob);
    const put = await fetch(`${redirecting.url}/v2/${REPOSITORY}/manifests/v1`, {
      method: "PUT",
      headers: { "content-type": image.manifest.mediaType },
      body: image.manifest.bytes,
    });
    assert.equal(put.status, 201, await put.text());

    for (const registry of [redirecting, direct]) {
      const answer = await fetch(`${registry.url}/v2/${REPOSITORY}/manifests/v1`, {
        headers: { accept: image.manifest.mediaType },
        redirect: "manual",
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get("location"), null);
      assert.equal(sha256(new Uint8Array(await answer.arrayBuffer())), image.manifest.digest);
    }
    const tags = await fetch(`${redirecting.url}/v2/${REPOSITORY}/tags/list`, {
      redirect: "manual",
    });
    assert.deepEqual(await tags.json(), { name: REPOSITORY, tags: ["v1"] });
  });

  it("answers a blob GET and HEAD with a 307 to a read-only SAS URL that plain fetch follows", async () => {
    const layer = image.layers[0]!;
    const blobUrl = `${redirecting.url}/v2/${REPOSITORY}/blobs/${layer.digest}`;
    const location = await assertBlobRedirects(blobUrl, layer);
    const hex = layer.digest.slice("sha256:".length);
    assert.equal(
      `${location.origin}${location.pathname}`,
      `${azurite.serviceUrl}/${CONTAINER}/${ROOT}/docker/registry/v2/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`,
    );
    assert.equal(location.searchParams.get("sp"), "r");
  });

  it("serves blobs itself, from the same container, with storage.redirect.disable", async () => {
    for (const blob of [image.config, image.layers[1]!]) {
      const answer = await fetch(`${direct.url}/v2/${REPOSITORY}/blobs/${blob.digest}`, {
        redirect: "manual",
      });
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get("location"), null);
      assert.equal(sha256(new Uint8Array(await answer.arrayBuffer())), blob.digest);
    }
  });
});

describe("azure parameters through the config", () => {
  it("name the storage.azure key of a bad parameter", async () => {
    // Checked before the SDK loads or any request is made: no server is needed.
    await assert.rejects(
      startRegistry({
        config: resolveConfig(
          {
            version: "0.1",
            storage: { azure: { accountname: "devstoreaccount1" } },
            http: { addr: "127.0.0.1:0" },
          },
          { REGISTRY_STORAGE_AZURE_CONTAINER: "Not_A_Container" },
        ),
      }),
      (error: Error) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems[0]!.key, "storage.azure.container");
        assert.match(error.message, /Not_A_Container/);
        return true;
      },
    );
  });
});
