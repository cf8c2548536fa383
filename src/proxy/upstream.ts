// The HTTP client of one upstream registry: the requests a pull-through cache makes (manifest and
// blob HEAD and GET, tag lists) with the upstream's authentication, anonymous, Basic, or the
// bearer-token challenge of Docker Hub (401 with `WWW-Authenticate: Bearer realm,service,scope`,
// a token from the realm, the request again), tokens kept until they expire; and the upstream's
// rate limit (429 and Retry-After) respected by not asking again before it allows.

import { LRUCache } from "lru-cache";
import type { UpstreamConfig } from "../config/index.js";
import { ManifestMediaType } from "../storage/index.js";

/** Every manifest type, so that the upstream answers with what it stores (an index stays one). */
export const MANIFEST_ACCEPT = [
  ManifestMediaType.OciIndex,
  ManifestMediaType.OciManifest,
  ManifestMediaType.DockerManifestList,
  ManifestMediaType.DockerManifest,
].join(", ");

/** Without a Retry-After, a 429 keeps the upstream alone for this long. */
const DEFAULT_RETRY_AFTER_MS = 10_000;
/** A token without `expires_in` lasts 60 s (the token spec's default). */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Tokens are renewed this long before they expire. */
const TOKEN_MARGIN_MS = 5_000;

/** What went wrong talking to the upstream. `status` is the upstream's HTTP status, if any. */
export class UpstreamError extends Error {
  readonly code = "ERR_BERTH_UPSTREAM";
  constructor(
    message: string,
    readonly status?: number,
    /** For a 429: milliseconds until the upstream may be asked again. */
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "UpstreamError";
  }

  /** The upstream does not have it (404). */
  get notFound(): boolean {
    return this.status === 404;
  }
}

/** A bearer challenge's parameters. */
interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (or `Basic realm="…"`). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (header === null) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const part of match[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) {
    params[part[1]!.toLowerCase()] =
      part[2] !== undefined ? part[2].replace(/\\(.)/g, "$1") : part[3]!;
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

/** Milliseconds a Retry-After header asks for (seconds or an HTTP date). */
export function retryAfterMs(header: string | null, now = Date.now()): number {
  if (header === null || header.trim() === "") return DEFAULT_RETRY_AFTER_MS;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isNaN(date) ? DEFAULT_RETRY_AFTER_MS : Math.max(0, date - now);
}

/** Counters of one upstream, for logs and metrics. */
export interface UpstreamCounters {
  requests: number;
  errors: number;
  tokens: number;
}

/** One upstream registry. */
export class Upstream {
  readonly counters: UpstreamCounters = { requests: 0, errors: 0, tokens: 0 };
  /** Tokens by scope (one per repository pulled), bounded. */
  private readonly tokens = new LRUCache<string, { token: string; expiresAt: number }>({
    max: 10_000,
  });
  private readonly basic: string | undefined;
  /** Set after a Basic challenge: send Basic credentials from then on. */
  private basicChallenged = false;
  private quietUntil = 0;

  constructor(readonly config: UpstreamConfig) {
    this.basic =
      config.username === undefined
        ? undefined
        : `Basic ${Buffer.from(`${config.username}:${config.password ?? ""}`).toString("base64")}`;
  }

  /** The upstream's name of a local repository: the prefix removed. */
  remoteName(name: string): string {
    return name.slice(this.config.prefix.length);
  }

  /**
   * Sends `method` to `/v2/<path>` for repository `remote`, authenticating as the upstream asks.
   * Resolves to any response but 401 and 429 (the caller reads the status); rejects with an
   * UpstreamError when the upstream cannot be reached, refuses the credentials or rate-limits.
   */
  async request(
    method: "GET" | "HEAD",
    remote: string,
    path: string,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<Response> {
    if (Date.now() < this.quietUntil) {
      throw new UpstreamError(
        `upstream ${this.config.remoteURL} is rate-limiting; not asking again yet`,
        429,
        this.quietUntil - Date.now(),
      );
    }
    const scope = `repository:${remote}:pull`;
    const url = `${this.config.remoteURL}/v2/${path}`;
    let response = await this.send(method, url, headers, this.authorization(scope), signal);
    if (response.status === 401) {
      const challenge = parseChallenge(response.headers.get("www-authenticate"));
      await response.body?.cancel();
      const authorization = await this.answer(challenge, scope, signal).catch((error: unknown) => {
        this.counters.errors++;
        throw error;
      });
      response = await this.send(method, url, headers, authorization, signal);
      if (response.status === 401) {
        await response.body?.cancel();
        this.counters.errors++;
        throw new UpstreamError(`upstream ${this.config.remoteURL} refused the credentials`, 401);
      }
    }
    if (response.status === 403) {
      await response.body?.cancel();
      this.counters.errors++;
      throw new UpstreamError(
        `upstream ${this.config.remoteURL} refused access to ${remote} (403)`,
        403,
      );
    }
    if (response.status === 429) {
      await response.body?.cancel();
      const wait = retryAfterMs(response.headers.get("retry-after"));
      this.quietUntil = Date.now() + wait;
      this.counters.errors++;
      throw new UpstreamError(`upstream ${this.config.remoteURL} is rate-limiting`, 429, wait);
    }
    if (response.status >= 500) {
      await response.body?.cancel();
      this.counters.errors++;
      throw new UpstreamError(
        `upstream ${this.config.remoteURL} answered ${response.status} to ${method} /v2/${path}`,
        response.status,
      );
    }
    return response;
  }

  private async send(
    method: string,
    url: string,
    headers: Record<string, string>,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<Response> {
    this.counters.requests++;
    try {
      return await fetch(url, {
        method,
        headers:
          authorization === undefined ? headers : { ...headers, Authorization: authorization },
        signal,
      });
    } catch (error) {
      this.counters.errors++;
      throw new UpstreamError(
        `upstream ${this.config.remoteURL} unreachable`,
        undefined,
        undefined,
        {
          cause: error,
        },
      );
    }
  }

  /** The Authorization header to send first: a cached token for the scope, or Basic once asked. */
  private authorization(scope: string): string | undefined {
    const cached = this.tokens.get(scope);
    if (cached !== undefined && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    return this.basicChallenged ? this.basic : undefined;
  }

  /** The Authorization header answering a 401's challenge. */
  private async answer(
    challenge: Challenge | undefined,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    if (challenge?.scheme === "basic") {
      if (this.basic === undefined) {
        throw new UpstreamError(`upstream ${this.config.remoteURL} wants credentials`, 401);
      }
      this.basicChallenged = true;
      return this.basic;
    }
    if (challenge?.scheme !== "bearer" || challenge.params.realm === undefined) {
      throw new UpstreamError(
        `upstream ${this.config.remoteURL} answered 401 without a challenge`,
        401,
      );
    }
    const tokenScope = challenge.params.scope ?? scope;
    const realm = new URL(challenge.params.realm);
    if (challenge.params.service !== undefined) {
      realm.searchParams.set("service", challenge.params.service);
    }
    realm.searchParams.set("scope", tokenScope);
    this.counters.tokens++;
    let response: Response;
    try {
      response = await fetch(realm, {
        headers: this.basic === undefined ? {} : { Authorization: this.basic },
        signal,
      });
    } catch (error) {
      throw new UpstreamError(`token service ${realm.origin} unreachable`, undefined, undefined, {
        cause: error,
      });
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new UpstreamError(`token service ${realm.origin} answered ${response.status}`, 401);
    }
    const body = (await response.json()) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
      issued_at?: string;
    };
    const token = body.token ?? body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new UpstreamError(`token service ${realm.origin} gave no token`, 401);
    }
    const lifetime =
      typeof body.expires_in === "number" && body.expires_in > 0
        ? body.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    const expiresAt = Date.now() + lifetime * 1000 - TOKEN_MARGIN_MS;
    this.tokens.set(scope, { token, expiresAt });
    return `Bearer ${token}`;
  }
}
