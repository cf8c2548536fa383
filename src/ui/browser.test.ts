// The web UI in a real browser: Debian's Chromium (playwright-core, no browser download) against
// Berth serving the UI, with images pushed by skopeo. The CLI as `npm start` runs it, browsing,
// search and paging, a multi-arch image and its referrers, deleting a tag, and logging in and out
// in htpasswd mode and with the built-in token service.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { writeHtpasswd } from "../testing/auth.js";
import { launchBrowser, skipUnlessChromium, type TestBrowser } from "../testing/browser.js";
import { CLI } from "../testing/driver-scripts.js";
import { buildArtifact, buildImage, buildIndex, pushBlob, pushImage } from "../testing/images.js";
import { imageEntry, indexEntry, writeOciLayout } from "../testing/oci-layout.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";

const skip =
  skipUnlessChromium() || skipUnlessCommands(["skopeo", "htpasswd"], ["skopeo", "apache2-utils"]);

/** An OCI layout with a single-platform image (tag `image`) and a two-platform index (`multi`). */
async function writeSource(directory: string) {
  const image = buildImage({ layers: 2, gzip: true });
  const index = buildIndex({ layers: 1, gzip: true });
  const source = join(directory, "source");
  await writeOciLayout(source, [imageEntry("image", image), indexEntry("multi", index)]);
  return { source, image, index };
}

/** `berth serve` without a config, as `npm start` runs it, in `cwd`; resolves with its address. */
async function startCli(cwd: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [CLI, "serve"], {
    cwd,
    // Port 0: a free one (npm start listens on 5000, which a test cannot count on).
    env: { ...process.env, REGISTRY_HTTP_ADDR: "127.0.0.1:0", REGISTRY_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /serving (http:\/\/\S+) with/.exec(output);
      if (match !== null) resolve(match[1]!);
    });
    child.once("exit", (code) => reject(new Error(`berth serve exited with ${code}: ${output}`)));
  });
  return { child, url };
}

async function stopCli(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/** The names the repositories list shows. */
async function shownRepositories(browser: TestBrowser): Promise<string[]> {
  return browser.page.locator("ul.repositories li a").allTextContents();
}

describe("web UI in Chromium", { skip }, () => {
  let browser: TestBrowser;
  let directory: string;

  before(async () => {
    directory = await mkdtemp(join(tmpdir(), "berth-ui-"));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await rm(directory, { recursive: true, force: true });
  });

  it("`berth serve` without a config (npm start) shows what skopeo pushed at the printed address", async () => {
    const cwd = await mkdtemp(join(directory, "cli-"));
    const { source } = await writeSource(cwd);
    const { child, url } = await startCli(cwd);
    try {
      const host = new URL(url).host;
      await skopeoCopy(`oci:${source}:image`, `docker://${host}/library/hello:1.0`);
      await skopeoCopy(`oci:${source}:multi`, `docker://${host}/team/multi:latest`);
      const { page } = browser;
      await page.goto(url);
      await page.locator("ul.repositories").waitFor();
      assert.deepEqual(await shownRepositories(browser), ["library/hello", "team/multi"]);
      assert.match((await page.locator("#catalog-count").textContent()) ?? "", /^2 repositories/);
      assert.equal(await page.title(), "Berth registry");
    } finally {
      await stopCli(child);
    }
  });

  describe("an open registry with deletes enabled", () => {
    let registry: RunningRegistry;
    let fixtures: Awaited<ReturnType<typeof writeSource>>;
    let sbom: string;
    let signature: string;

    before(async () => {
      registry = await startRegistry({
        driver: "inmemory",
        deleteEnabled: true,
        ui: { enabled: true, path: "/" },
        logLevel: "silent",
      });
      fixtures = await writeSource(directory);
      const host = `127.0.0.1:${registry.port}`;
      await skopeoCopy(`oci:${fixtures.source}:image`, `docker://${host}/apps/single:v1`);
      await skopeoCopy(`oci:${fixtures.source}:multi`, `docker://${host}/apps/multi:1`);
      await skopeoCopy(`oci:${fixtures.source}:multi`, `docker://${host}/apps/multi:2`);
      // 1,050 more repositories, through the storage layer (two catalog requests of 1000).
      const filler = buildImage({ layers: 1, layerSize: 16 });
      for (let i = 0; i < 1050; i += 1) {
        await pushImage(
          registry.storage.repository(`bulk/repo-${String(i).padStart(4, "0")}`),
          filler,
          "v1",
        );
      }
      // An SBOM of the index, and a signature of the SBOM: a referrers tree two levels deep.
      const repository = registry.storage.repository("apps/multi");
      const sbomArtifact = buildArtifact({
        artifactType: "application/spdx+json",
        subject: fixtures.index.index,
        annotations: { "org.opencontainers.image.created": "2026-01-02T03:04:05Z" },
      });
      for (const blob of sbomArtifact.blobs) await pushBlob(repository, blob);
      sbom = (
        await repository.manifests.put(sbomArtifact.manifest.bytes, sbomArtifact.manifest.mediaType)
      ).digest;
      const signatureArtifact = buildArtifact({
        artifactType: "application/vnd.dev.cosign.artifact.sig.v1+json",
        subject: sbomArtifact.manifest,
      });
      for (const blob of signatureArtifact.blobs) await pushBlob(repository, blob);
      signature = (
        await repository.manifests.put(
          signatureArtifact.manifest.bytes,
          signatureArtifact.manifest.mediaType,
        )
      ).digest;
    });
    after(async () => {
      await registry?.close();
    });

    it("lists 1,052 repositories in pages, searches them, with no request per repository", async () => {
      const { page } = browser;
      const requests: string[] = [];
      const listener = (request: { url(): string }) => requests.push(request.url());
      page.on("request", listener);
      try {
        await page.goto(`${registry.url}/`);
        await page.locator("#catalog-count", { hasText: /^1,052 repositories$/ }).waitFor();
        const first = await shownRepositories(browser);
        assert.equal(first.length, 50);
        assert.deepEqual(first.slice(0, 3), ["apps/multi", "apps/single", "bulk/repo-0000"]);
        await page.getByRole("button", { name: "Next →" }).click();
        await page.getByText("Page 2 of 22").waitFor();
        assert.equal((await shownRepositories(browser))[0], "bulk/repo-0048");

        await page.getByLabel("Search repositories").fill("repo-104");
        await page
          .locator("#catalog-count", { hasText: "10 of 1,052 repositories match" })
          .waitFor();
        assert.deepEqual(
          await shownRepositories(browser),
          Array.from({ length: 10 }, (_, i) => `bulk/repo-104${i}`),
        );
        const catalog = requests.filter((url) => url.includes("/v2/_catalog"));
        assert.equal(catalog.length, 2, catalog.join("\n"));
        assert.deepEqual(
          requests.filter((url) => /\/v2\/(bulk|apps)\//.test(url) || url.includes("_berth")),
          [],
        );
      } finally {
        page.off("request", listener);
      }
    });

    it("shows a multi-arch image's tags, platforms, layers and config", async () => {
      const { page } = browser;
      await page.goto(`${registry.url}/`);
      await page.getByRole("link", { name: "apps/multi" }).click();
      const row = page.getByRole("row", { name: /^1 / });
      await row.waitFor();
      const cells = await row.locator("td").allTextContents();
      assert.equal(cells[1], "index");
      assert.equal(cells[2], "linux/amd64, linux/arm64");
      assert.match(cells[3]!, /^\d+(\.\d+)? (B|kB)$/);
      assert.match((await row.locator("time").getAttribute("datetime")) ?? "", /^\d{4}-\d\d-\d\dT/);
      assert.equal(
        await row.locator("code.digest").getAttribute("title"),
        fixtures.index.index.digest,
      );

      // The repository's storage: the index, two manifests, two configs, two layers, and the SBOM,
      // its signature and their (shared) empty config.
      await page.locator("#usage", { hasText: /^Storage: .+ in 10 blobs/ }).waitFor();

      await row.getByRole("link", { name: "1" }).click();
      await page.getByRole("heading", { name: "apps/multi:1" }).waitFor();
      const platforms = page.getByRole("table", { name: "Platforms" });
      await platforms.waitFor();
      assert.deepEqual(await platforms.locator("tbody th").allTextContents(), [
        "linux/amd64",
        "linux/arm64",
      ]);
      const pull = await page.getByLabel("docker pull command", { exact: true }).textContent();
      assert.equal(pull, `docker pull 127.0.0.1:${registry.port}/apps/multi:1`);

      await platforms.getByRole("link", { name: "linux/arm64" }).click();
      const arm = fixtures.index.images[1]!;
      await page.getByRole("heading", { name: `apps/multi@${arm.manifest.digest}` }).waitFor();
      const layers = page.getByRole("table", { name: /^Layers/ });
      await layers.locator("tbody tr").first().waitFor();
      assert.equal(await layers.locator("tbody tr").count(), 1);
      await page.getByText("linux/arm64", { exact: true }).waitFor();
    });

    it("shows referrers as a tree by artifactType and opens one", async () => {
      const { page } = browser;
      await page.goto(`${registry.url}/#/m/apps/multi/1`);
      const tree = page.getByRole("list", { name: "Referrers by artifact type" });
      await tree.waitFor();
      await tree.getByText("application/spdx+json").waitFor();
      // The signature of the SBOM, one level down.
      const nested = page.getByRole("link", {
        name: `application/vnd.dev.cosign.artifact.sig.v1+json ${signature}`,
      });
      await nested.waitFor();
      await page.getByRole("link", { name: `application/spdx+json ${sbom}` }).click();
      await page.getByRole("heading", { name: `apps/multi@${sbom}` }).waitFor();
      // The heading shows before the manifest arrives: count once its details are on the page.
      await page.getByRole("term").filter({ hasText: "Subject" }).waitFor();
      assert.equal(await page.locator("dd", { hasText: "application/spdx+json" }).count(), 1);
    });

    it("deletes a tag after a confirmation", async () => {
      const { page } = browser;
      await page.goto(`${registry.url}/#/r/apps/multi`);
      await page.getByRole("button", { name: "Delete tag 2" }).click();
      await page.getByRole("button", { name: "Delete 2" }).click();
      await page.getByRole("status").filter({ hasText: "Deleted tag 2." }).waitFor();
      await page.getByRole("row", { name: /^2 / }).waitFor({ state: "detached" });
      // The list is fetched again after the delete: count once it is back on the page.
      await page.getByRole("row", { name: /^1 / }).waitFor();
      assert.equal(await page.getByRole("row", { name: /^1 / }).count(), 1);
      const gone = await fetch(`${registry.url}/v2/apps/multi/manifests/2`);
      assert.equal(gone.status, 404);
      const kept = await fetch(`${registry.url}/v2/apps/multi/manifests/1`);
      assert.equal(kept.status, 200);
    });
  });

  it("offers no delete where deletes are disabled", async () => {
    const registry = await startRegistry({
      driver: "inmemory",
      ui: { enabled: true, path: "/ui" },
      logLevel: "silent",
    });
    try {
      await pushImage(registry.storage.repository("ro/app"), buildImage({ layers: 1 }), "v1");
      const { page } = browser;
      await page.goto(`${registry.url}/ui#/r/ro/app`);
      await page.getByRole("table", { name: /deleting is disabled on this registry/ }).waitFor();
      assert.equal(await page.getByRole("button", { name: /^Delete/ }).count(), 0);
      await page.getByRole("link", { name: "v1" }).click();
      await page.getByText("Deleting is disabled on this registry.").waitFor();
    } finally {
      await registry.close();
    }
  });

  for (const mode of ["htpasswd", "token"] as const) {
    it(`logs in and out (${mode}), showing only what the user may pull`, async () => {
      const users = join(directory, `${mode}.htpasswd`);
      await writeHtpasswd(users, { alice: "alice-secret", root: "root-secret" });
      const accesscontrol = {
        repositories: { "team-a/**": { policies: [{ users: ["alice"], actions: ["pull"] }] } },
        adminPolicy: { users: ["root"], actions: ["*"] },
      };
      const auth =
        mode === "htpasswd"
          ? { htpasswd: { realm: "berth", path: users }, accesscontrol }
          : {
              token: {
                realm: "/auth/token",
                autoredirect: true,
                service: "berth-test",
                issuer: "berth-test",
                issue: { users, key: join(directory, `${mode}-key.pem`) },
              },
              accesscontrol,
            };
      const registry = await startRegistry({
        driver: "inmemory",
        deleteEnabled: true,
        ui: { enabled: true, path: "/" },
        auth,
        logLevel: "silent",
      });
      try {
        const image = buildImage({ layers: 1 });
        await pushImage(registry.storage.repository("team-a/app"), image, "v1");
        await pushImage(registry.storage.repository("team-b/app"), image, "v1");
        const { page } = browser;
        await page.goto(`${registry.url}/`);
        const alert = page.getByRole("alert");
        await alert.getByText("log in to see this").waitFor();
        await alert.getByRole("link", { name: "Log in" }).click();

        await page.getByLabel("User name").fill("alice");
        await page.getByLabel("Password").fill("wrong");
        await page.getByRole("button", { name: "Log in" }).click();
        await page.getByRole("alert").getByText("wrong user name or password").waitFor();

        await page.getByLabel("Password").fill("alice-secret");
        await page.getByRole("button", { name: "Log in" }).click();
        await page.getByText("Logged in as alice").waitFor();
        await page.locator("#catalog-count", { hasText: /^1 repository$/ }).waitFor();
        assert.deepEqual(await shownRepositories(browser), ["team-a/app"]);
        // Alice may pull but not delete.
        await page.getByRole("link", { name: "team-a/app" }).click();
        await page.getByRole("table", { name: /you may not delete here/ }).waitFor();
        assert.equal(await page.getByRole("button", { name: "Delete tag v1" }).count(), 0);
        // Nothing of the session is a password in token mode.
        const stored = String(await page.evaluate('sessionStorage.getItem("berth-session") ?? ""'));
        if (mode === "token") assert.doesNotMatch(stored, /alice-secret|YWxpY2U6YWxpY2Ut/);

        await page.getByRole("button", { name: "Log out" }).click();
        await page.getByRole("alert").getByText("log in to see this").waitFor();
        assert.equal(await page.evaluate('sessionStorage.getItem("berth-session")'), null);

        // The admin sees both and may delete.
        await page.getByRole("link", { name: "Log in" }).first().click();
        await page.getByLabel("User name").fill("root");
        await page.getByLabel("Password").fill("root-secret");
        await page.getByRole("button", { name: "Log in" }).click();
        await page.locator("#catalog-count", { hasText: /^2 repositories$/ }).waitFor();
        await page.getByRole("link", { name: "team-b/app" }).click();
        await page.getByRole("button", { name: "Delete tag v1" }).waitFor();
        await page.getByRole("button", { name: "Log out" }).click();
      } finally {
        await registry.close();
      }
    });
  }
});
