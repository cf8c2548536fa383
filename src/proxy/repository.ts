// A repository served from an upstream through local storage. What is stored locally is served
// as it is (a hit never asks the upstream, but for a tag whose ttl has passed); what is not is
// fetched once from the upstream, stored as ordinary content and served. Writes are refused with
// UNSUPPORTED, as distribution's pull-through cache refuses them.

import type {
  Descriptor,
  Digest,
  Repository,
  RepositoryBlobs,
  RepositoryManifests,
  RepositoryTags,
  RepositoryUsage,
} from "../storage/index.js";
import { ProxyBlobs } from "./blobs.js";
import type { UpstreamContext } from "./context.js";
import { ProxyManifests, ProxyTags } from "./manifests.js";

export { SingleFlight, type UpstreamContext } from "./context.js";

export class ProxyRepository implements Repository {
  readonly blobs: RepositoryBlobs;
  readonly manifests: RepositoryManifests;
  readonly tags: RepositoryTags;
  private readonly remote: string;

  constructor(
    context: UpstreamContext,
    private readonly local: Repository,
  ) {
    this.remote = context.upstream.remoteName(local.name);
    this.blobs = new ProxyBlobs(context, local, this.remote);
    this.manifests = new ProxyManifests(context, local, this.remote);
    this.tags = new ProxyTags(context, local, this.remote, this.manifests as ProxyManifests);
  }

  get name(): string {
    return this.local.name;
  }

  referrers(digest: Digest, artifactType?: string): Promise<Descriptor[]> {
    return this.local.referrers(digest, artifactType);
  }

  /** What the cache holds of the repository. */
  usage(): Promise<RepositoryUsage> {
    return this.local.usage();
  }
}
