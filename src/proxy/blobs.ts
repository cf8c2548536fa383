// The blobs of a cached repository: local ones served from storage, others fetched once from the
// upstream (see fetch.ts) while they stream to the clients asking.

import type { Writable } from "node:stream";
import {
  isRegistryError,
  RegistryError,
  RegistryErrorCode,
  type BlobInfo,
  type Digest,
  type Repository,
  type RepositoryBlobs,
  type StreamOptions,
  type UploadSession,
} from "../storage/index.js";
import { unsupported, upstreamFailure, type UpstreamContext } from "./context.js";
import { BlobFetch } from "./fetch.js";
import { UpstreamError } from "./upstream.js";

export class ProxyBlobs implements RepositoryBlobs {
  constructor(
    private readonly context: UpstreamContext,
    private readonly local: Repository,
    private readonly remote: string,
  ) {}

  private key(digest: Digest): string {
    return `${this.local.name}@${digest}`;
  }

  private unknown(digest: Digest): RegistryError {
    return new RegistryError(
      RegistryErrorCode.BlobUnknown,
      `blob ${digest} is not in repository ${this.local.name} nor upstream`,
      { digest },
    );
  }

  async stat(digest: Digest): Promise<BlobInfo> {
    try {
      const info = await this.local.blobs.stat(digest);
      this.context.state.hit("blob");
      return info;
    } catch (error) {
      if (!isRegistryError(error, RegistryErrorCode.BlobUnknown)) throw error;
    }
    const running = this.context.fetches.get(this.key(digest));
    if (running?.size !== undefined) return { digest, size: running.size };
    return this.context.blobStats.run(this.key(digest), async () => {
      const response = await this.context.upstream
        .request("HEAD", this.remote, `${this.remote}/blobs/${digest}`)
        .catch((error: unknown) => {
          throw upstreamFailure(error, this.unknown(digest));
        });
      const length = Number(response.headers.get("content-length"));
      if (response.status === 404) throw this.unknown(digest);
      if (!response.ok || !Number.isSafeInteger(length)) {
        throw new UpstreamError(`upstream HEAD of blob ${digest} answered ${response.status}`);
      }
      return { digest, size: length };
    });
  }

  private async startFetch(digest: Digest): Promise<BlobFetch> {
    const { upstream, state } = this.context;
    const response = await upstream
      .request("GET", this.remote, `${this.remote}/blobs/${digest}`)
      .catch((error: unknown) => {
        throw upstreamFailure(error, this.unknown(digest));
      });
    if (response.status === 404) {
      await response.body?.cancel();
      throw this.unknown(digest);
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel();
      throw new UpstreamError(`upstream GET of blob ${digest} answered ${response.status}`);
    }
    const length = Number(response.headers.get("content-length"));
    state.miss("blob");
    return new BlobFetch(
      digest,
      response.body,
      Number.isSafeInteger(length) && response.headers.get("content-length") !== null
        ? length
        : undefined,
      this.local.blobs,
      (count) => state.fetched("blob", count),
    );
  }

  /** The fetch of `digest`, shared by every caller that asks while it runs. */
  private shared(digest: Digest): Promise<BlobFetch> {
    const key = this.key(digest);
    const { fetches, pending } = this.context;
    const running = fetches.get(key);
    if (running !== undefined) return Promise.resolve(running);
    const waiting = pending.get(key);
    if (waiting !== undefined) return waiting;
    const starting = this.startFetch(digest)
      .then((fetch) => {
        fetches.set(key, fetch);
        const forget = (): void => void fetches.delete(key);
        fetch.done.then(forget, forget);
        return fetch;
      })
      .finally(() => pending.delete(key));
    // Reserved while the request is on its way, so that concurrent callers share it.
    pending.set(key, starting);
    return starting;
  }

  /** Resolves once the blob is in local storage (fetching it if need be). */
  private async ensureLocal(digest: Digest): Promise<void> {
    if (await this.hasLocal(digest)) return;
    await (
      await this.shared(digest)
    ).done;
  }

  private async hasLocal(digest: Digest): Promise<boolean> {
    try {
      await this.local.blobs.stat(digest);
      return true;
    } catch (error) {
      if (isRegistryError(error, RegistryErrorCode.BlobUnknown)) return false;
      throw error;
    }
  }

  async reader(digest: Digest, offset?: number) {
    await this.ensureLocal(digest);
    return this.local.blobs.reader(digest, offset);
  }

  async copyTo(
    digest: Digest,
    destination: Writable,
    offset = 0,
    length?: number,
    options?: StreamOptions,
  ): Promise<void> {
    // A hit costs what a local copy costs: the local store answers BLOB_UNKNOWN before any byte.
    const copy = (): Promise<void> =>
      this.local.blobs.copyTo(digest, destination, offset, length, options);
    if (await unlessUnknown(copy())) return;
    const fetch = await this.shared(digest);
    const whole = offset === 0 && (length === undefined || length === fetch.size);
    const joined = whole ? fetch.join(destination, options?.signal) : undefined;
    if (joined !== undefined) return joined;
    await fetch.done;
    await copy();
  }

  async redirectURL(digest: Digest, method?: "GET" | "HEAD"): Promise<string | null> {
    const redirect = (): Promise<string | null> => this.local.blobs.redirectURL(digest, method);
    const local = await unlessUnknown(redirect());
    if (local !== undefined) return local.value;
    // Streaming a blob being fetched beats waiting for all of it before a redirect.
    if (!(await this.context.redirects())) return null;
    await this.ensureLocal(digest);
    return redirect();
  }

  async delete(): Promise<void> {
    throw unsupported("deleting a blob");
  }

  async mount(): Promise<BlobInfo> {
    throw unsupported("pushing");
  }

  async startUpload(): Promise<UploadSession> {
    throw unsupported("pushing");
  }

  async resumeUpload(): Promise<UploadSession> {
    throw unsupported("pushing");
  }
}

/** `{ value }` of a local call, or undefined when it answered BLOB_UNKNOWN. */
async function unlessUnknown<T>(call: Promise<T>): Promise<{ value: T } | undefined> {
  try {
    return { value: await call };
  } catch (error) {
    if (isRegistryError(error, RegistryErrorCode.BlobUnknown)) return undefined;
    throw error;
  }
}
