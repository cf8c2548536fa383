// `npm run screenshots`: the pictures of docs/ui.md, taken with the browser tests' set-up (Debian's
// Chromium through playwright-core) from a registry holding images pushed with skopeo and an SBOM
// with a signature. Run after `npm run build`; writes docs/ui-*.png.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = (path) => join(root, "dist", "src", path);
const { startRegistry } = await import(dist("server/index.js"));
const { launchBrowser } = await import(dist("testing/browser.js"));
const images = await import(dist("testing/images.js"));
const { imageEntry, indexEntry, writeOciLayout } = await import(dist("testing/oci-layout.js"));
const { skopeoCopy } = await import(dist("testing/skopeo.js"));

const directory = await mkdtemp(join(tmpdir(), "berth-screenshots-"));
const registry = await startRegistry({
  driver: "inmemory",
  deleteEnabled: true,
  ui: { enabled: true, path: "/" },
  logLevel: "silent",
});
try {
  const image = images.buildImage({ layers: 3, gzip: true, layerSize: 200_000 });
  const index = images.buildIndex({
    layers: 2,
    gzip: true,
    layerSize: 300_000,
    platforms: [
      { os: "linux", architecture: "amd64" },
      { os: "linux", architecture: "arm64" },
    ],
  });
  const source = join(directory, "source");
  await writeOciLayout(source, [imageEntry("image", image), indexEntry("multi", index)]);
  const host = `127.0.0.1:${registry.port}`;
  for (const [tag, target] of [
    ["multi", "shop/frontend:1.4.2"],
    ["multi", "shop/frontend:latest"],
    ["image", "shop/frontend:1.4.1"],
    ["image", "shop/backend:2.0.0"],
    ["multi", "tools/debug:stable"],
    ["image", "library/postgres:16"],
  ]) {
    await skopeoCopy(`oci:${source}:${tag}`, `docker://${host}/${target}`);
  }
  const repository = registry.storage.repository("shop/frontend");
  const sbom = images.buildArtifact({
    artifactType: "application/spdx+json",
    subject: index.index,
    annotations: { "org.opencontainers.image.created": "2026-11-28T20:00:00Z" },
  });
  const signature = images.buildArtifact({
    artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
    subject: sbom.manifest,
  });
  for (const artifact of [sbom, signature]) {
    for (const blob of artifact.blobs) await images.pushBlob(repository, blob);
    await repository.manifests.put(artifact.manifest.bytes, artifact.manifest.mediaType);
  }

  const shots = [
    ["light", "ui-repositories.png", "/", "ul.repositories"],
    ["light", "ui-tags.png", "/#/r/shop/frontend", "table.tags"],
    ["light", "ui-index.png", "/#/m/shop/frontend/1.4.2", "ul.tree ul.tree"],
    [
      "dark",
      "ui-image-dark.png",
      `/#/m/shop/frontend/${index.images[1].manifest.digest}`,
      "table.layers",
    ],
  ];
  for (const [scheme, file, path, ready] of shots) {
    const browser = await launchBrowser({
      colorScheme: scheme,
      viewport: { width: 1000, height: 640 },
    });
    try {
      await browser.page.goto(`${registry.url}${path}`);
      await browser.page.locator(ready).first().waitFor();
      // The index page in full: its referrers tree is below the fold.
      await browser.page.screenshot({
        path: join(root, "docs", file),
        fullPage: file === "ui-index.png",
      });
      process.stdout.write(`docs/${file}\n`);
    } finally {
      await browser.close();
    }
  }
} finally {
  await registry.close();
  await rm(directory, { recursive: true, force: true });
}
