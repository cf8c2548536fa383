// Retention over a running registry (filesystem storage): multi-arch indexes, referrers and many
// tags with push times set on their links, one tag pulled with skopeo; `berth retention` (the
// CLI) first as a dry run, then for real. What stays is exactly what the rules say, every kept
// image pulls whole with skopeo, nothing of a kept index is gone, and what only the removed tags
// reached (children, referrers of removed subjects, blobs) is collected.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../config/index.js";
import {
  buildArtifact,
  buildImage,
  buildIndex,
  pushBlob,
  pushImage,
  pushIndex,
  type Content,
  type TestImage,
  type TestIndex,
} from "../testing/images.js";
import {
  assertLayoutHolds,
  imageEntry,
  indexEntry,
  type LayoutEntry,
} from "../testing/oci-layout.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { eventually } from "../testing/eventually.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startRegistry, type RunningRegistry } from "./index.js";

const execFileAsync = promisify(execFile);
const main = fileURLToPath(new URL("../cli/main.js", import.meta.url));
const DAY = 86_400_000;

const configYaml = (root: string): string => `version: 0.1
storage:
  filesystem:
    rootdirectory: ${root}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
    gc:
      delay: 0s
  tags:
    immutable: ["^release-"]
  retention:
    interval: 24h
    policies:
      - repositories: ["team-a/**"]
        keep:
          mostRecent: 2
          patterns: ["^v\\\\d+"]
          pushedWithin: 30d
          pulledWithin: 14d
        deleteUntagged: true
      - repositories: ["team-b/*"]
        keep:
          mostRecent: 1
        deleteUntagged: false
http:
  addr: 127.0.0.1:0
`;

type Pushed = { kind: "image"; image: TestImage } | { kind: "index"; index: TestIndex };

function topManifest(pushed: Pushed): Content {
  return pushed.kind === "image" ? pushed.image.manifest : pushed.index.index;
}

function entry(tag: string, pushed: Pushed): LayoutEntry {
  return pushed.kind === "image" ? imageEntry(tag, pushed.image) : indexEntry(tag, pushed.index);
}

/** Every blob and manifest of a pushed image or index. */
function allContent(pushed: Pushed): Content[] {
  const images = pushed.kind === "image" ? [pushed.image] : pushed.index.images;
  return [
    ...(pushed.kind === "index" ? [pushed.index.index] : []),
    ...images.flatMap((image) => [image.manifest, image.config, ...image.layers]),
  ];
}

describe(
  "retention (storage.retention, berth retention)",
  {
    skip: skipUnlessCommands(["skopeo"], ["skopeo"]),
  },
  () => {
    let directory: string;
    let root: string;
    let configFile: string;
    let berth: RunningRegistry;
    const tags = new Map<string, Map<string, Pushed>>();
    const referrers: Record<string, Content> = {};

    /** Pushes `pushed` into `repository` as `tag`, pushed `ageMs` ago (its link's mtime). */
    async function push(repository: string, tag: string, pushed: Pushed, ageMs: number) {
      const repo = berth.storage.repository(repository);
      if (pushed.kind === "image") await pushImage(repo, pushed.image, tag);
      else await pushIndex(repo, pushed.index, tag);
      const link = join(
        root,
        "docker/registry/v2/repositories",
        repository,
        "_manifests/tags",
        tag,
        "current/link",
      );
      const when = new Date(Date.now() - ageMs);
      await utimes(link, when, when);
      const repoTags = tags.get(repository) ?? new Map<string, Pushed>();
      repoTags.set(tag, pushed);
      tags.set(repository, repoTags);
    }

    async function pushReferrer(repository: string, name: string, subject: Content) {
      const repo = berth.storage.repository(repository);
      const artifact = buildArtifact({
        artifactType: `application/vnd.test.${name}`,
        subject,
        blobs: [buildImage({ layers: 1 }).layers[0]!],
      });
      for (const blob of artifact.blobs) await pushBlob(repo, blob);
      await repo.manifests.put(artifact.manifest.bytes, artifact.manifest.mediaType);
      referrers[name] = artifact.manifest;
    }

    async function status(path: string, method = "HEAD"): Promise<number> {
      const response = await fetch(`${berth.url}${path}`, {
        method,
        headers: {
          Accept:
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        },
      });
      await response.arrayBuffer();
      return response.status;
    }

    /** Asserts the status of a HEAD of every manifest and blob of `pushed` (tagged `tag`). */
    async function assertContent(
      repository: string,
      tag: string,
      pushed: Pushed,
      expected: number,
    ) {
      for (const item of allContent(pushed)) {
        const manifest = item.mediaType.includes("manifest") || item.mediaType.includes("index");
        const path = `/v2/${repository}/${manifest ? "manifests" : "blobs"}/${item.digest}`;
        assert.equal(await status(path), expected, `${tag} ${item.digest}`);
      }
    }

    async function tagList(repository: string): Promise<string[]> {
      return berth.storage.repository(repository).tags.list();
    }

    async function retention(...extra: string[]): Promise<string> {
      const { stdout } = await execFileAsync(
        process.execPath,
        [main, "retention", configFile, ...extra],
        {
          env: { PATH: process.env.PATH ?? "" },
        },
      );
      return stdout;
    }

    const image = (): Pushed => ({
      kind: "image",
      image: buildImage({ layers: 2, layerSize: 2048 }),
    });
    const index = (): Pushed => ({
      kind: "index",
      index: buildIndex({ layers: 1, layerSize: 2048 }),
    });

    before(async () => {
      directory = await mkdtemp(join(tmpdir(), "berth-retention-"));
      root = join(directory, "root");
      configFile = join(directory, "config.yml");
      await writeFile(configFile, configYaml(root));
      berth = await startRegistry({ config: await loadConfig(configFile, {}), logLevel: "silent" });

      await push("team-a/app", "v1", image(), 60 * DAY);
      await push("team-a/app", "v2-multi", index(), 60 * DAY);
      await push("team-a/app", "recent-1", image(), 3_600_000);
      await push("team-a/app", "recent-2", index(), 2 * 3_600_000);
      await push("team-a/app", "week", image(), 7 * DAY);
      await push("team-a/app", "pulled", image(), 60 * DAY);
      await push("team-a/app", "old-1", image(), 60 * DAY);
      await push("team-a/app", "old-2", image(), 50 * DAY);
      await push("team-a/app", "old-multi", index(), 40 * DAY);
      await push("team-a/app", "release-1", image(), 90 * DAY);
      await push("team-a/nested/lib", "v3", image(), 60 * DAY);
      await push("team-a/nested/lib", "old", image(), 60 * DAY);
      await push("team-a/nested/lib", "fresh-1", image(), 3_600_000);
      await push("team-a/nested/lib", "fresh-2", image(), 2 * 3_600_000);
      await push("team-b/svc", "a", image(), 3_600_000);
      await push("team-b/svc", "b", image(), 60 * DAY);
      await push("other/app", "old", image(), 365 * DAY);
      const app = tags.get("team-a/app")!;
      await pushReferrer("team-a/app", "signature-of-v1", topManifest(app.get("v1")!));
      await pushReferrer("team-a/app", "sbom-of-old-1", topManifest(app.get("old-1")!));
      await pushReferrer(
        "team-a/app",
        "signature-of-old-multi",
        topManifest(app.get("old-multi")!),
      );
      await pushReferrer(
        "team-a/app",
        "signature-of-v2-child",
        app.get("v2-multi")!.kind === "index"
          ? (app.get("v2-multi") as { index: TestIndex }).index.images[0]!.manifest
          : topManifest(app.get("v2-multi")!),
      );

      // A real pull by tag, recorded in memory and written by the flush `berth serve` does every minute.
      await skopeoCopy(
        `docker://${new URL(berth.url).host}/team-a/app:pulled`,
        `oci:${join(directory, "pulled")}:pulled`,
      );
      await berth.pulls!.flush();
    });

    after(async () => {
      await berth?.close();
      await rm(directory, { recursive: true, force: true });
    });

    const removedTags: [string, string][] = [
      ["team-a/app", "old-1"],
      ["team-a/app", "old-2"],
      ["team-a/app", "old-multi"],
      ["team-a/nested/lib", "old"],
      ["team-b/svc", "b"],
    ];
    const keptTags: Record<string, string[]> = {
      "team-a/app": ["pulled", "recent-1", "recent-2", "release-1", "v1", "v2-multi", "week"],
      "team-a/nested/lib": ["fresh-1", "fresh-2", "v3"],
      "team-b/svc": ["a"],
      "other/app": ["old"],
    };

    it("a dry run lists exactly the tags the rules do not keep and changes nothing", async () => {
      const before = await tagList("team-a/app");
      const output = await retention("--dry-run");
      const wouldGo = [...output.matchAll(/would untag (\S+):(\S+) /g)].map((m) => [m[1], m[2]]);
      assert.deepEqual(wouldGo.sort(), [...removedTags].sort());
      assert.match(output, /11 tags kept, 5 would be untagged/);
      assert.match(output, /eligible for deletion/);
      assert.deepEqual(await tagList("team-a/app"), before);
    });

    it("keeps exactly what the rules keep, collects what only removed tags reached", async () => {
      const output = await retention();
      assert.match(output, /11 tags kept, 5 untagged/);
      // A registry believes what it cached of storage for up to a minute (docs/gc.md): start afresh.
      await berth.close();
      berth = await startRegistry({ config: await loadConfig(configFile, {}), logLevel: "silent" });
      for (const [repository, expected] of Object.entries(keptTags)) {
        assert.deepEqual(await tagList(repository), expected, repository);
      }
      const app = tags.get("team-a/app")!;
      // Removed with deleteUntagged: the manifests, an index's children, their blobs, and the
      // referrers whose subject went.
      for (const tag of ["old-1", "old-2", "old-multi"]) {
        await assertContent("team-a/app", tag, app.get(tag)!, 404);
      }
      assert.equal(
        await status(`/v2/team-a/app/manifests/${referrers["sbom-of-old-1"]!.digest}`),
        404,
      );
      assert.equal(
        await status(`/v2/team-a/app/manifests/${referrers["signature-of-old-multi"]!.digest}`),
        404,
      );
      // Kept: referrers of kept manifests (of an index's child too), every part of a kept index.
      assert.equal(
        await status(`/v2/team-a/app/manifests/${referrers["signature-of-v1"]!.digest}`),
        200,
      );
      assert.equal(
        await status(`/v2/team-a/app/manifests/${referrers["signature-of-v2-child"]!.digest}`),
        200,
      );
      for (const tag of keptTags["team-a/app"]!) {
        await assertContent("team-a/app", tag, app.get(tag)!, 200);
      }
      // team-b's policy does not delete untagged manifests: b's manifest stays by digest.
      const b = topManifest(tags.get("team-b/svc")!.get("b")!);
      assert.equal(await status(`/v2/team-b/svc/manifests/${b.digest}`), 200);
    });

    it("every kept image pulls whole with skopeo", async () => {
      const host = new URL(berth.url).host;
      for (const [repository, kept] of Object.entries(keptTags)) {
        for (const tag of kept) {
          const pushed = tags.get(repository)!.get(tag)!;
          const layout = join(directory, "pull", repository.replaceAll("/", "_"), tag);
          await mkdir(dirname(layout), { recursive: true });
          await skopeoCopy(`docker://${host}/${repository}:${tag}`, `oci:${layout}:${tag}`);
          await assertLayoutHolds(layout, [entry(tag, pushed)]);
        }
      }
    });
  },
);

describe("retention as a job of berth serve", () => {
  it("untags and collects every storage.retention.interval", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-retention-job-"));
    const root = join(directory, "root");
    const berth = await startRegistry({
      logLevel: "silent",
      config: {
        version: "0.1",
        storage: {
          filesystem: { rootdirectory: root },
          // A delay protects the push of `new` from the job's collection (0s is only offline).
          maintenance: { uploadpurging: { enabled: false }, gc: { delay: "1s" } },
          retention: {
            interval: "500ms",
            policies: [{ repositories: ["job/*"], keep: { mostRecent: 1 }, deleteUntagged: true }],
          },
        },
        http: { addr: "127.0.0.1:0" },
      },
    });
    try {
      const repo = berth.storage.repository("job/app");
      const old = buildImage({ layers: 1 });
      await pushImage(repo, old, "old");
      const link = join(
        root,
        "docker/registry/v2/repositories/job/app/_manifests/tags/old/current/link",
      );
      const past = new Date(Date.now() - DAY);
      await utimes(link, past, past);
      const kept = buildImage({ layers: 1 });
      await pushImage(repo, kept, "new");
      await eventually(async () => !(await repo.manifests.exists(old.manifest.digest)), 30_000);
      assert.deepEqual(await repo.tags.list(), ["new"]);
      assert.equal(await repo.manifests.exists(kept.manifest.digest), true);
    } finally {
      await berth.close();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
