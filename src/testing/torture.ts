// Test support: a garbage collection torture run against running registries (one, or several
// replicas over one storage). Concurrent workers over HTTP for a bounded time: pushers of random
// images (layers from a small shared pool and unique ones; half of them HEAD first and skip what
// is there), cross-repository mounters (mount every blob of a pushed image into another
// repository, then push its manifest there), tag movers (push an existing manifest under another
// image's tag), deleters (DELETE a manifest by digest) and a maker of orphans (blobs uploaded
// and never referenced). Every manifest PUT that answered 201 is
// recorded with what it references; afterwards each one that was not deleted (and, when untagged
// manifests are collected, that a tag still points at) must pull completely, digests verified.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { ManifestMediaType } from "../storage/index.js";

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

interface Blob {
  digest: string;
  bytes: Buffer;
}

function blob(bytes: Buffer): Blob {
  return { digest: sha256(bytes), bytes };
}

/** A manifest PUT that answered 201. */
export interface AckedImage {
  repository: string;
  digest: string;
  bytes: Buffer;
  blobs: Blob[];
  tag: string;
}

export interface TortureOptions {
  /** Base URLs of the replicas; every request goes to a random one. */
  urls: string[];
  durationMs: number;
  /** True when the registries collect untagged manifests. */
  untagged: boolean;
  repositories?: number;
  pushers?: number;
}

export interface TortureCounts {
  pushes: number;
  /** Manifest PUTs answered MANIFEST_BLOB_UNKNOWN (a blob collected between HEAD and PUT). */
  refused: number;
  mounts: number;
  tagMoves: number;
  deletes: number;
  /**
   * Manifest DELETEs answered MANIFEST_UNKNOWN for an image no tag pointed at any more: with
   * untagged manifests collected, the collector may have taken it first.
   */
  collectedFirst: number;
  /** Blobs uploaded and never referenced. */
  orphans: number;
  /** Other failed requests (they must be 0). */
  errors: string[];
}

function randomItem<T>(items: T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

export class Torture {
  readonly acked = new Map<string, AckedImage>();
  readonly deleted = new Set<string>();
  readonly counts: TortureCounts = {
    pushes: 0,
    refused: 0,
    mounts: 0,
    tagMoves: 0,
    deletes: 0,
    collectedFirst: 0,
    orphans: 0,
    errors: [],
  };
  /** (repository, digest) keys a worker is changing now: others leave them alone. */
  private readonly busy = new Set<string>();
  /** The digest each `${repository}:${tag}` points at, as the last PUT answered 201 set it. */
  private readonly tags = new Map<string, string>();
  private readonly shared: Blob[] = Array.from({ length: 12 }, () => blob(randomBytes(2048)));
  private readonly repositories: string[];
  private sequence = 0;
  private stopAt = 0;

  constructor(private readonly options: TortureOptions) {
    this.repositories = Array.from(
      { length: options.repositories ?? 4 },
      (_, index) => `torture/r${index}`,
    );
  }

  private url(path: string): string {
    return `${randomItem(this.options.urls)}/v2/${path}`;
  }

  private fail(what: string, response: Response): void {
    this.counts.errors.push(`${what}: HTTP ${response.status}`);
  }

  private async pushBlob(repository: string, item: Blob, headFirst: boolean): Promise<boolean> {
    if (headFirst) {
      const head = await fetch(this.url(`${repository}/blobs/${item.digest}`), { method: "HEAD" });
      if (head.status === 200) return true;
    }
    const response = await fetch(
      this.url(`${repository}/blobs/uploads/?digest=${encodeURIComponent(item.digest)}`),
      {
        method: "POST",
        body: item.bytes,
        headers: { "Content-Type": "application/octet-stream" },
      },
    );
    await response.arrayBuffer();
    if (response.status !== 201) this.fail(`blob upload to ${repository}`, response);
    return response.status === 201;
  }

  /** PUTs a manifest; records it when answered 201. */
  private async putManifest(
    repository: string,
    tag: string,
    bytes: Buffer,
    blobs: Blob[],
  ): Promise<void> {
    const response = await fetch(this.url(`${repository}/manifests/${tag}`), {
      method: "PUT",
      body: bytes,
      headers: { "Content-Type": ManifestMediaType.OciManifest },
    });
    const text = await response.text();
    if (response.status === 201) {
      const digest = sha256(bytes);
      this.acked.set(`${repository}@${digest}`, { repository, digest, bytes, blobs, tag });
      this.tags.set(`${repository}:${tag}`, digest);
      this.deleted.delete(`${repository}@${digest}`);
      this.counts.pushes++;
    } else if (response.status === 400 && text.includes("MANIFEST_BLOB_UNKNOWN")) {
      this.counts.refused++;
    } else {
      this.fail(`manifest PUT to ${repository}: ${text}`, response);
    }
  }

  private async push(): Promise<void> {
    const repository = randomItem(this.repositories);
    const layers = [
      ...Array.from({ length: 1 + Math.floor(Math.random() * 2) }, () => randomItem(this.shared)),
      blob(randomBytes(512 + Math.floor(Math.random() * 8192))),
    ];
    const unique = [...new Map(layers.map((layer) => [layer.digest, layer])).values()];
    const config = blob(
      Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", n: this.sequence })),
    );
    const headFirst = Math.random() < 0.5;
    for (const item of [config, ...unique]) {
      if (!(await this.pushBlob(repository, item, headFirst))) return;
    }
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: ManifestMediaType.OciManifest,
        config: {
          mediaType: "application/vnd.oci.image.config.v1+json",
          digest: config.digest,
          size: config.bytes.length,
        },
        layers: unique.map((layer) => ({
          mediaType: "application/vnd.oci.image.layer.v1.tar",
          digest: layer.digest,
          size: layer.bytes.length,
        })),
      }),
    );
    await this.putManifest(repository, `t${this.sequence++}`, manifest, [config, ...unique]);
  }

  /** An acked, not deleted image no other worker is changing; marked busy until `done`. */
  private pick(): { image: AckedImage; done: () => void } | undefined {
    const keys = [...this.acked.keys()].filter(
      (key) => !this.deleted.has(key) && !this.busy.has(key),
    );
    if (keys.length === 0) return undefined;
    const key = randomItem(keys);
    this.busy.add(key);
    return { image: this.acked.get(key)!, done: () => this.busy.delete(key) };
  }

  private async mount(): Promise<void> {
    const picked = this.pick();
    if (picked === undefined) return;
    const { image } = picked;
    const target = randomItem(this.repositories.filter((name) => name !== image.repository));
    const key = `${target}@${image.digest}`;
    if (this.busy.has(key)) return picked.done();
    this.busy.add(key);
    try {
      for (const item of image.blobs) {
        const response = await fetch(
          this.url(
            `${target}/blobs/uploads/?mount=${encodeURIComponent(item.digest)}&from=${image.repository}`,
          ),
          { method: "POST" },
        );
        await response.arrayBuffer();
        // 202: the source lost it meanwhile (deleted, collected): upload it as a client does.
        if (response.status !== 201 && !(await this.pushBlob(target, item, false))) return;
      }
      this.counts.mounts++;
      await this.putManifest(target, `m${this.sequence++}`, image.bytes, image.blobs);
    } finally {
      this.busy.delete(key);
      picked.done();
    }
  }

  private async moveTag(): Promise<void> {
    const picked = this.pick();
    if (picked === undefined) return;
    try {
      const { image } = picked;
      const others = [...this.acked.values()].filter(
        (other) => other.repository === image.repository && other.digest !== image.digest,
      );
      if (others.length === 0) return;
      const other = randomItem(others);
      // The image losing its tag may become untagged garbage: no DELETE of it meanwhile, so that
      // a DELETE answered "unknown" can tell from `tags` whether the collector was entitled to it.
      const holder = this.tags.get(`${other.repository}:${other.tag}`) ?? other.digest;
      const otherKey = `${other.repository}@${holder}`;
      const tagKey = `${other.repository}:#${other.tag}`;
      if (this.busy.has(otherKey) || this.busy.has(tagKey)) return;
      this.busy.add(otherKey);
      this.busy.add(tagKey);
      try {
        await this.putManifest(image.repository, other.tag, image.bytes, image.blobs);
        this.counts.tagMoves++;
      } finally {
        this.busy.delete(otherKey);
        this.busy.delete(tagKey);
      }
    } finally {
      picked.done();
    }
  }

  private async remove(): Promise<void> {
    const picked = this.pick();
    if (picked === undefined) return;
    const { image } = picked;
    const key = `${image.repository}@${image.digest}`;
    // Counted deleted before the request: a lost response may still have deleted it.
    this.deleted.add(key);
    try {
      const response = await fetch(this.url(`${image.repository}/manifests/${image.digest}`), {
        method: "DELETE",
      });
      await response.arrayBuffer();
      if (response.status === 202) this.counts.deletes++;
      else if (response.status === 404 && this.options.untagged && !this.tagged(image)) {
        this.counts.collectedFirst++;
      } else this.fail(`manifest DELETE in ${image.repository}`, response);
    } finally {
      picked.done();
    }
  }

  /** True when a tag of the image's repository points at it, as far as the answered PUTs tell. */
  private tagged(image: AckedImage): boolean {
    for (const [key, digest] of this.tags) {
      if (digest === image.digest && key.startsWith(`${image.repository}:`)) return true;
    }
    return false;
  }

  /** Uploads a blob no manifest will ever reference: garbage for sure, once `delay` passed. */
  private async orphan(): Promise<void> {
    if (await this.pushBlob(randomItem(this.repositories), blob(randomBytes(1024)), false)) {
      this.counts.orphans++;
    }
  }

  private async worker(step: () => Promise<void>, pauseMs: number): Promise<void> {
    while (Date.now() < this.stopAt) {
      try {
        await step();
      } catch (error) {
        this.counts.errors.push(String(error));
      }
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  }

  /** Runs every worker until `durationMs` passed. */
  async run(): Promise<TortureCounts> {
    this.stopAt = Date.now() + this.options.durationMs;
    const pushers = this.options.pushers ?? 3;
    await Promise.all([
      ...Array.from({ length: pushers }, () => this.worker(() => this.push(), 0)),
      this.worker(() => this.mount(), 20),
      this.worker(() => this.moveTag(), 50),
      this.worker(() => this.remove(), 100),
      this.worker(() => this.orphan(), 250),
    ]);
    return this.counts;
  }

  /** The acked images a client must still be able to pull. */
  async expected(): Promise<AckedImage[]> {
    const images = [...this.acked.entries()]
      .filter(([key]) => !this.deleted.has(key))
      .map(([, image]) => image);
    if (!this.options.untagged) return images;
    const tagged = new Set<string>();
    for (const repository of this.repositories) {
      const response = await fetch(this.url(`${repository}/tags/list`));
      if (response.status !== 200) continue;
      const { tags } = (await response.json()) as { tags: string[] | null };
      for (const tag of tags ?? []) {
        const head = await fetch(this.url(`${repository}/manifests/${tag}`), {
          method: "HEAD",
          headers: { Accept: ManifestMediaType.OciManifest },
        });
        tagged.add(`${repository}@${head.headers.get("docker-content-digest")}`);
      }
    }
    return images.filter((image) => tagged.has(`${image.repository}@${image.digest}`));
  }

  /** Pulls every expected image completely from every replica, checking every digest. */
  async assertPullable(): Promise<number> {
    const images = await this.expected();
    for (const base of this.options.urls) {
      for (const image of images) {
        const where = `${image.repository}@${image.digest} from ${base}`;
        const manifest = await fetch(`${base}/v2/${image.repository}/manifests/${image.digest}`, {
          headers: { Accept: ManifestMediaType.OciManifest },
        });
        assert.equal(manifest.status, 200, `manifest ${where}`);
        assert.equal(sha256(Buffer.from(await manifest.arrayBuffer())), image.digest, where);
        for (const item of image.blobs) {
          const response = await fetch(`${base}/v2/${image.repository}/blobs/${item.digest}`);
          assert.equal(response.status, 200, `blob ${item.digest} of ${where}`);
          const bytes = Buffer.from(await response.arrayBuffer());
          assert.equal(sha256(bytes), item.digest, `blob ${item.digest} of ${where}`);
        }
      }
    }
    return images.length;
  }
}
