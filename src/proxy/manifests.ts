// The manifests and tags of a cached repository: by digest fetched once and kept; by tag
// revalidated upstream once ttl has passed, and served stale when the upstream fails.

import {
  isRegistryError,
  MAX_MANIFEST_SIZE,
  RegistryErrorCode,
  type Digest,
  type PutManifestResult,
  type Repository,
  type RepositoryManifests,
  type RepositoryTags,
  type StoredManifest,
  RegistryError,
} from "../storage/index.js";
import { unsupported, upstreamFailure, type UpstreamContext } from "./context.js";
import { MANIFEST_ACCEPT, UpstreamError } from "./upstream.js";

export class ProxyManifests implements RepositoryManifests {
  constructor(
    private readonly context: UpstreamContext,
    private readonly local: Repository,
    private readonly remote: string,
  ) {}

  unknown(reference: string): RegistryError {
    return new RegistryError(
      RegistryErrorCode.ManifestUnknown,
      `manifest ${reference} is not in repository ${this.local.name} nor upstream`,
      { reference },
    );
  }

  async exists(digest: Digest): Promise<boolean> {
    if (await this.local.manifests.exists(digest)) return true;
    try {
      await this.get(digest);
      return true;
    } catch (error) {
      if (isRegistryError(error, RegistryErrorCode.ManifestUnknown)) return false;
      throw error;
    }
  }

  async get(digest: Digest): Promise<StoredManifest> {
    let stored: StoredManifest;
    try {
      stored = await this.local.manifests.get(digest);
      this.context.state.hit("manifest");
    } catch (error) {
      if (!isRegistryError(error, RegistryErrorCode.ManifestUnknown)) throw error;
      stored = await this.fetch(digest);
    }
    this.context.pulled(this.local.name);
    return stored;
  }

  /**
   * Fetches the manifest `reference` (a digest or a tag) from upstream and stores it (tagged, for
   * a tag). A manifest by digest is checked against it; one by tag against the upstream's
   * Docker-Content-Digest when it sends one.
   */
  fetch(reference: string, tag?: string): Promise<StoredManifest> {
    const key = `${this.local.name}:${reference}`;
    return this.context.manifestFetches.run(key, async () => {
      const { upstream, state } = this.context;
      const response = await upstream
        .request("GET", this.remote, `${this.remote}/manifests/${reference}`, {
          Accept: MANIFEST_ACCEPT,
        })
        .catch((error: unknown) => {
          throw upstreamFailure(error, this.unknown(reference));
        });
      if (response.status === 404) {
        await response.body?.cancel();
        throw this.unknown(reference);
      }
      if (!response.ok) {
        await response.body?.cancel();
        throw new UpstreamError(
          `upstream GET of manifest ${reference} answered ${response.status}`,
        );
      }
      const declared = Number(response.headers.get("content-length"));
      if (declared > MAX_MANIFEST_SIZE) {
        await response.body?.cancel();
        throw new UpstreamError(
          `upstream manifest ${reference} is over ${MAX_MANIFEST_SIZE} bytes`,
        );
      }
      const content = Buffer.from(await response.arrayBuffer());
      state.miss("manifest");
      state.fetched("manifest", content.length);
      const expected =
        tag === undefined
          ? reference
          : (response.headers.get("docker-content-digest") ?? undefined);
      const mediaType = response.headers.get("content-type") ?? "";
      const result: PutManifestResult = await this.local.manifests.put(content, mediaType, {
        ...(tag !== undefined ? { tag } : {}),
        ...(expected !== undefined ? { expectedDigest: expected } : {}),
        verifyReferences: false,
      });
      return { digest: result.digest, mediaType: result.mediaType, content };
    });
  }

  async put(): Promise<PutManifestResult> {
    throw unsupported("pushing a manifest");
  }

  async delete(): Promise<void> {
    throw unsupported("deleting a manifest");
  }
}

export class ProxyTags implements RepositoryTags {
  constructor(
    private readonly context: UpstreamContext,
    private readonly local: Repository,
    private readonly remote: string,
    private readonly manifests: ProxyManifests,
  ) {}

  /** The upstream's tags; the local ones when the upstream cannot answer. */
  async list(): Promise<string[]> {
    try {
      const response = await this.context.upstream.request(
        "GET",
        this.remote,
        `${this.remote}/tags/list`,
      );
      if (response.ok) {
        const body = (await response.json()) as { tags?: string[] | null };
        return [...(body.tags ?? [])].sort();
      }
      await response.body?.cancel();
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
    }
    return this.local.tags.list();
  }

  /**
   * The digest of `tag`: the local one while its ttl runs; after, the upstream's (a HEAD; the
   * manifest is fetched when it changed); the local one again when the upstream cannot answer
   * (stale on error).
   */
  async resolve(tag: string): Promise<Digest> {
    const { state } = this.context;
    if (state.tagFresh(this.local.name, tag)) {
      try {
        const digest = await this.local.tags.resolve(tag);
        state.hit("manifest");
        this.context.pulled(this.local.name);
        return digest;
      } catch (error) {
        if (!isRegistryError(error, RegistryErrorCode.ManifestUnknown)) throw error;
      }
    }
    const digest = await this.context.tagChecks.run(`${this.local.name}:${tag}`, () =>
      this.revalidate(tag),
    );
    this.context.pulled(this.local.name);
    return digest;
  }

  private async revalidate(tag: string): Promise<Digest> {
    const { upstream, state } = this.context;
    let remoteDigest: string | undefined;
    try {
      const response = await upstream.request(
        "HEAD",
        this.remote,
        `${this.remote}/manifests/${tag}`,
        {
          Accept: MANIFEST_ACCEPT,
        },
      );
      if (response.status === 404) throw new UpstreamError(`no tag ${tag} upstream`, 404);
      if (!response.ok) throw new UpstreamError(`upstream HEAD of tag ${tag}: ${response.status}`);
      remoteDigest = response.headers.get("docker-content-digest") ?? undefined;
    } catch (error) {
      if (!(error instanceof UpstreamError) || error.notFound) {
        throw upstreamFailure(error, this.manifests.unknown(tag));
      }
      // Stale on error: what is cached is served while the upstream is down or rate-limiting.
      const cached = await this.local.tags.resolve(tag).catch(() => undefined);
      if (cached === undefined) throw upstreamFailure(error, this.manifests.unknown(tag));
      state.stale(this.local.name, error);
      return cached;
    }
    if (remoteDigest !== undefined && (await this.local.manifests.exists(remoteDigest))) {
      const current = await this.local.tags.resolve(tag).catch(() => undefined);
      if (current !== remoteDigest) await this.local.tags.tag(tag, remoteDigest);
      state.hit("manifest");
      state.tagChecked(this.local.name, tag);
      return remoteDigest;
    }
    const fetched = await this.manifests.fetch(remoteDigest ?? tag, tag);
    state.tagChecked(this.local.name, tag);
    return fetched.digest;
  }

  /** When the cache last stored the tag (its push into local storage). */
  pushedAt(tag: string): Promise<Date> {
    return this.local.tags.pushedAt(tag);
  }

  async tag(): Promise<void> {
    throw unsupported("tagging");
  }

  async untag(): Promise<void> {
    throw unsupported("deleting a tag");
  }

  lookup(digest: Digest): Promise<string[]> {
    return this.local.tags.lookup(digest);
  }
}
