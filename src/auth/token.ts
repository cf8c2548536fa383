// Bearer tokens as the Docker token specification has distribution verify them: a JWS signed with
// an accepted algorithm (never `none`) by a trusted key, found by the header's `x5c` chain, its
// `jwk` or its `kid`; `iss` the configured issuer, `aud` naming the service, `exp` and `nbf` with
// a minute of leeway; the `access` claim lists what the bearer may do.

import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { loadJose, TrustedKeys, verifyChain } from "./keys.js";

/** distribution's leeway on `exp` and `nbf` for clock skew. */
export const LEEWAY_SECONDS = 60;
/** A token larger than this is refused unread (Node bounds headers at 16 KiB anyway). */
const MAX_TOKEN = 16 * 1024;

/** The algorithms accepted when `signingalgorithms` is not set. */
export const DEFAULT_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
];

/** One entry of the `access` claim. */
export interface ResourceActions {
  type: string;
  name: string;
  actions: string[];
}

/** What a verified token says. */
export interface VerifiedToken {
  subject: string | undefined;
  access: ResourceActions[];
}

/** A token that is not accepted, with the reason (for the log, never for the client). */
export class InvalidTokenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidTokenError";
  }
}

export interface VerifierOptions {
  issuer: string;
  /** The audiences accepted (the configured service). */
  audience: string;
  algorithms: string[];
  keys: TrustedKeys;
}

/** Verifies raw tokens against one configuration. */
export class TokenVerifier {
  constructor(private readonly options: VerifierOptions) {}

  /** The key that signed a token with this header, if it is trusted. */
  private signingKey(header: Record<string, unknown>): KeyObject {
    const { keys } = this.options;
    if (header.x5c !== undefined) return verifyChain(header.x5c, keys.roots, new Date());
    if (header.jwk !== undefined) {
      let key: KeyObject;
      try {
        key = createPublicKey({ key: header.jwk as JsonWebKey, format: "jwk" });
      } catch {
        throw new InvalidTokenError("the jwk header is no key");
      }
      if (!keys.has(key)) throw new InvalidTokenError("the jwk header's key is not trusted");
      return key;
    }
    if (typeof header.kid === "string" && header.kid !== "") {
      const key = keys.get(header.kid);
      if (key === undefined) throw new InvalidTokenError(`no trusted key with id ${header.kid}`);
      return key;
    }
    throw new InvalidTokenError("the token names no signing key (x5c, jwk or kid)");
  }

  /** The token's claims when it is valid now; InvalidTokenError saying why otherwise. */
  async verify(raw: string): Promise<VerifiedToken> {
    if (raw.length > MAX_TOKEN) throw new InvalidTokenError("token too large");
    const { decodeProtectedHeader, jwtVerify } = await loadJose();
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(raw);
    } catch {
      throw new InvalidTokenError("malformed token");
    }
    const { algorithms } = this.options;
    if (typeof header.alg !== "string" || !algorithms.includes(header.alg)) {
      throw new InvalidTokenError(`signing algorithm ${String(header.alg)} is not accepted`);
    }
    let key: KeyObject;
    try {
      key = this.signingKey(header);
    } catch (error) {
      throw error instanceof InvalidTokenError
        ? error
        : new InvalidTokenError((error as Error).message);
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(raw, key, {
        algorithms,
        issuer: this.options.issuer,
        audience: this.options.audience,
        clockTolerance: LEEWAY_SECONDS,
        requiredClaims: ["exp"],
      }));
    } catch (error) {
      throw new InvalidTokenError((error as Error).message);
    }
    return {
      subject: typeof payload.sub === "string" && payload.sub !== "" ? payload.sub : undefined,
      access: parseAccess(payload.access),
    };
  }
}

/** The well-formed entries of an `access` claim; anything else grants nothing. */
function parseAccess(claim: unknown): ResourceActions[] {
  if (!Array.isArray(claim)) return [];
  const access: ResourceActions[] = [];
  for (const entry of claim) {
    if (typeof entry !== "object" || entry === null) continue;
    const { type, name, actions } = entry as Record<string, unknown>;
    if (typeof type !== "string" || typeof name !== "string" || !Array.isArray(actions)) continue;
    access.push({
      type,
      name,
      actions: actions.filter((action): action is string => typeof action === "string"),
    });
  }
  return access;
}

/** True when `access` grants `action` on the resource (`*` grants every action). */
export function grants(
  access: readonly ResourceActions[],
  type: string,
  name: string,
  action: string,
): boolean {
  return access.some(
    (entry) =>
      entry.type === type &&
      entry.name === name &&
      (entry.actions.includes(action) || entry.actions.includes("*")),
  );
}

/** A scope string of the token specification: `repository:team/app:pull,push`. */
export function scopeString(type: string, name: string, actions: readonly string[]): string {
  return `${type}:${name}:${actions.join(",")}`;
}

/** Parses a scope; null when malformed. The resource class `repository(plugin)` is dropped. */
export function parseScope(scope: string): ResourceActions | null {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first <= 0 || last === first) return null;
  const type = scope.slice(0, first).replace(/\([a-z0-9]+\)$/i, "");
  const name = scope.slice(first + 1, last);
  const actions = scope
    .slice(last + 1)
    .split(",")
    .filter((action) => action !== "");
  if (name === "" || actions.length === 0) return null;
  return { type, name, actions };
}
