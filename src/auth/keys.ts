// Trusted token-signing keys, as distribution finds them: the certificates of `rootcertbundle`
// (a token's `x5c` chain must verify to one of them, or its `kid` must name one's key) and the keys
// of a `jwks` file. A key is named by its libtrust key id (what distribution and the token servers
// written for it put in `kid`) and by its RFC 7638 JWK thumbprint.

import {
  createHash,
  createPublicKey,
  X509Certificate,
  type JsonWebKey,
  type KeyObject,
} from "node:crypto";
import { readFile } from "node:fs/promises";
import type { JWK } from "jose";

let joseModule: Promise<typeof import("jose")> | undefined;

/** jose, loaded on first use: a registry without token auth never loads it (idle RSS). */
export function loadJose(): Promise<typeof import("jose")> {
  joseModule ??= import("jose");
  return joseModule;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

function base32(bytes: Uint8Array): string {
  let out = "";
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/**
 * libtrust's key id: the SHA-256 of the key's DER SubjectPublicKeyInfo, its first 240 bits in
 * base32, in groups of four joined by `:` (`ABCD:EFGH:...`, twelve groups).
 */
export function libtrustKeyId(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const der = publicKey.export({ type: "spki", format: "der" });
  const digest = createHash("sha256").update(der).digest().subarray(0, 30);
  return base32(digest).match(/.{4}/g)!.join(":");
}

/** The RFC 7638 thumbprint (SHA-256, base64url) of a public key. */
export async function jwkThumbprint(key: KeyObject): Promise<string> {
  const { calculateJwkThumbprint, exportJWK } = await loadJose();
  return calculateJwkThumbprint(await exportJWK(key));
}

/** The certificates of a PEM bundle. */
export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

/** A configuration file that cannot be used, with the key that names it. */
export class KeyFileError extends Error {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`${key}: ${message}`);
    this.name = "KeyFileError";
  }
}

/** Trusted roots and keys, looked up by key id. */
export class TrustedKeys {
  readonly roots: X509Certificate[] = [];
  private readonly byId = new Map<string, KeyObject>();

  /** Trusts `key` under its libtrust id, its thumbprint and `kid` when given. */
  async add(key: KeyObject, kid?: string): Promise<void> {
    this.byId.set(libtrustKeyId(key), key);
    this.byId.set(await jwkThumbprint(key), key);
    if (kid !== undefined && kid !== "") this.byId.set(kid, key);
  }

  get(kid: string): KeyObject | undefined {
    return this.byId.get(kid);
  }

  /** True when `key` is one of the trusted keys. */
  has(key: KeyObject): boolean {
    const found = this.byId.get(libtrustKeyId(key));
    return found !== undefined && found.equals(key);
  }

  get size(): number {
    return this.byId.size;
  }

  /** Reads a PEM bundle of root certificates (config `auth.token.rootcertbundle`). */
  async addBundle(path: string): Promise<void> {
    const key = "auth.token.rootcertbundle";
    let pem: string;
    try {
      pem = await readFile(path, "utf8");
    } catch (error) {
      throw new KeyFileError(key, `cannot read ${path}: ${(error as Error).message}`);
    }
    let certificates: X509Certificate[];
    try {
      certificates = parseCertificates(pem);
    } catch (error) {
      throw new KeyFileError(key, `${path}: bad certificate: ${(error as Error).message}`);
    }
    if (certificates.length === 0) throw new KeyFileError(key, `${path} holds no certificate`);
    for (const certificate of certificates) {
      this.roots.push(certificate);
      await this.add(certificate.publicKey);
    }
  }

  /** Reads a JSON Web Key Set (config `auth.token.jwks`). */
  async addJwks(path: string): Promise<void> {
    const key = "auth.token.jwks";
    let keys: JWK[];
    try {
      const set = JSON.parse(await readFile(path, "utf8")) as { keys?: JWK[] };
      if (!Array.isArray(set.keys)) throw new Error('no "keys" list');
      keys = set.keys;
    } catch (error) {
      throw new KeyFileError(key, `${path}: ${(error as Error).message}`);
    }
    for (const jwk of keys) {
      try {
        const { d: _private, ...publicPart } = jwk;
        const publicKey = createPublicKey({ key: publicPart as JsonWebKey, format: "jwk" });
        await this.add(publicKey, jwk.kid);
      } catch (error) {
        throw new KeyFileError(key, `${path}: key ${jwk.kid ?? "?"}: ${(error as Error).message}`);
      }
    }
  }
}

const MAX_CHAIN = 8;

/**
 * The leaf's public key when the base64 DER chain `x5c` (leaf first) verifies to one of `roots`
 * at `now`: each certificate issued and signed by the next, every issuer a CA, every certificate
 * within its validity. Throws saying why otherwise.
 */
export function verifyChain(x5c: unknown, roots: X509Certificate[], now: Date): KeyObject {
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > MAX_CHAIN) {
    throw new Error("x5c is not a certificate chain");
  }
  const chain = x5c.map((entry) => {
    if (typeof entry !== "string") throw new Error("x5c holds a non-string");
    return new X509Certificate(Buffer.from(entry, "base64"));
  });
  const current = (certificate: X509Certificate): boolean =>
    new Date(certificate.validFrom) <= now && now <= new Date(certificate.validTo);
  for (const [index, certificate] of chain.entries()) {
    if (!current(certificate)) throw new Error(`x5c[${index}] is expired or not yet valid`);
    const issuer = chain[index + 1];
    if (issuer === undefined) break;
    if (!issuer.ca || !certificate.checkIssued(issuer) || !certificate.verify(issuer.publicKey)) {
      throw new Error(`x5c[${index}] is not signed by x5c[${index + 1}]`);
    }
  }
  const top = chain[chain.length - 1]!;
  const anchored =
    roots.some((root) => root.raw.equals(top.raw)) ||
    roots.some(
      (root) => root.ca && current(root) && top.checkIssued(root) && top.verify(root.publicKey),
    );
  if (!anchored) throw new Error("x5c does not chain to a certificate of the root bundle");
  return chain[0]!.publicKey;
}
