// Test support for auth: htpasswd files written by apache2-utils' `htpasswd -B`, a certificate
// authority made with the openssl CLI (root, intermediate, signing leaf), and tokens minted as
// distribution-compatible token servers mint them: RS256 with an `x5c` chain, or ES256 with the
// libtrust `kid` of a key whose certificate is in the bundle.

import { execFile } from "node:child_process";
import { createPrivateKey, randomUUID, X509Certificate, type KeyObject } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { SignJWT } from "jose";
import { libtrustKeyId } from "../auth/index.js";

const run = promisify(execFile);

/** Writes an htpasswd file at `path` with `htpasswd -B` (bcrypt), one entry per user. */
export async function writeHtpasswd(path: string, users: Record<string, string>): Promise<void> {
  let create = true;
  for (const [user, password] of Object.entries(users)) {
    await run("htpasswd", [create ? "-cbB" : "-bB", path, user, password]);
    create = false;
  }
}

/**
 * The auth section the client login tests run with: htpasswd mode, or token mode with the built-in
 * token service (`auth.token.issue`, signing key in `dir`), both with `users` as the htpasswd file
 * and one rule: alice may pull and push `team/**`, nobody else may do anything.
 */
export function clientsAuthSection(
  mode: "htpasswd" | "token",
  users: string,
  dir: string,
): Record<string, unknown> {
  const accesscontrol = {
    repositories: { "team/**": { policies: [{ users: ["alice"], actions: ["pull", "push"] }] } },
  };
  if (mode === "htpasswd") return { htpasswd: { realm: "berth", path: users }, accesscontrol };
  return {
    token: {
      realm: "unused",
      autoredirect: true,
      service: "berth.test",
      issuer: "berth",
      issue: { users, key: join(dir, "signing.pem") },
    },
    accesscontrol,
  };
}

/** A key and its certificate, as PEM files and loaded. */
export interface TestCertificate {
  keyPath: string;
  certPath: string;
  key: KeyObject;
  certificate: X509Certificate;
  /** The certificate's DER in base64, as x5c carries it. */
  x5c: string;
}

async function load(dir: string, name: string): Promise<TestCertificate> {
  const keyPath = join(dir, `${name}.key`);
  const certPath = join(dir, `${name}.crt`);
  const certificate = new X509Certificate(await readFile(certPath));
  return {
    keyPath,
    certPath,
    key: createPrivateKey(await readFile(keyPath)),
    certificate,
    x5c: certificate.raw.toString("base64"),
  };
}

async function openssl(dir: string, args: string[]): Promise<void> {
  await run("openssl", args, { cwd: dir });
}

const CA_EXTENSIONS = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n";
const LEAF_EXTENSIONS = "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n";

/** A self-signed CA named `name` in `dir` (RSA 2048). */
export async function makeRoot(dir: string, name: string): Promise<TestCertificate> {
  await writeFile(join(dir, "ca.ext"), CA_EXTENSIONS);
  await openssl(dir, [
    "genpkey",
    "-algorithm",
    "RSA",
    "-pkeyopt",
    "rsa_keygen_bits:2048",
    "-out",
    `${name}.key`,
  ]);
  await openssl(dir, [
    "req",
    "-x509",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    `/CN=${name}`,
    "-days",
    "3",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
    "-out",
    `${name}.crt`,
  ]);
  return load(dir, name);
}

/**
 * A certificate `name` in `dir` signed by `issuer`: a CA (intermediate) or a signing leaf, with an
 * RSA or EC P-256 key.
 */
export async function makeSigned(
  dir: string,
  name: string,
  issuer: TestCertificate,
  options: { ca?: boolean; ec?: boolean } = {},
): Promise<TestCertificate> {
  const extensions = join(dir, `${name}.ext`);
  await writeFile(extensions, options.ca ? CA_EXTENSIONS : LEAF_EXTENSIONS);
  const keyArgs = options.ec
    ? ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    : ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
  await openssl(dir, ["genpkey", ...keyArgs, "-out", `${name}.key`]);
  await openssl(dir, [
    "req",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    `/CN=${name}`,
    "-out",
    `${name}.csr`,
  ]);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    issuer.certPath,
    "-CAkey",
    issuer.keyPath,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    extensions,
    "-out",
    `${name}.crt`,
  ]);
  return load(dir, name);
}

/** The claims and header choices of a minted token. */
export interface MintOptions {
  issuer: string;
  audience: string | string[];
  subject?: string;
  access?: { type: string; name: string; actions: string[] }[];
  /** Seconds from now; negative for expired. Default 300. */
  expiresIn?: number;
  /** Seconds from now of nbf. Default 0. */
  notBefore?: number;
  alg?: string;
  /** Sign with this key, naming it by... */
  key: KeyObject;
  /** ...an x5c chain (leaf first), or */
  x5c?: string[];
  /** ...its libtrust key id (the default when no x5c), or this kid. */
  kid?: string;
}

/** A token as a distribution-compatible token server mints it. */
export async function mintToken(options: MintOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const alg = options.alg ?? (options.key.asymmetricKeyType === "ec" ? "ES256" : "RS256");
  const header: Record<string, unknown> = { alg, typ: "JWT" };
  if (options.x5c !== undefined) header.x5c = options.x5c;
  else header.kid = options.kid ?? libtrustKeyId(options.key);
  return new SignJWT({ access: options.access ?? [] })
    .setProtectedHeader(header as { alg: string })
    .setIssuer(options.issuer)
    .setSubject(options.subject ?? "alice")
    .setAudience(options.audience)
    .setIssuedAt(now)
    .setNotBefore(now + (options.notBefore ?? 0))
    .setExpirationTime(now + (options.expiresIn ?? 300))
    .setJti(randomUUID())
    .sign(options.key);
}

/** An unsigned token (`alg: none`), as an attacker would send it. */
export function unsignedToken(claims: Record<string, unknown>): string {
  const encode = (value: unknown): string =>
    Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${encode({ alg: "none", typ: "JWT" })}.${encode(claims)}.`;
}

/** What an endpoint case needs: an action on the repository, the catalog, or only a login. */
export type Need = "pull" | "push" | "delete" | "catalog" | "login";

/** One request of every endpoint of the API, with what it needs. */
export interface EndpointCase {
  method: string;
  path: string;
  need: Need;
  headers?: Record<string, string>;
  body?: string;
}

/** What the cases refer to: a pushed image in `name`, an open upload, another repository. */
export interface EndpointFixture {
  name: string;
  manifestDigest: string;
  blobDigest: string;
  /** The Location of an upload session in `name`. */
  upload: string;
  /** Another repository holding `blobDigest`, for the mount case. */
  from: string;
}

/** Every endpoint and method of the API once (uploads in each of their forms). */
export function endpointCases(fixture: EndpointFixture): EndpointCase[] {
  const { name, manifestDigest, blobDigest, upload, from } = fixture;
  const blob = "new blob content";
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.empty.v1+json", digest: blobDigest, size: 1 },
    layers: [],
  });
  return [
    { method: "GET", path: "/v2/", need: "login" },
    { method: "HEAD", path: "/v2/", need: "login" },
    { method: "GET", path: "/v2/_catalog", need: "catalog" },
    { method: "HEAD", path: "/v2/_catalog", need: "catalog" },
    { method: "GET", path: `/v2/${name}/tags/list`, need: "pull" },
    { method: "HEAD", path: `/v2/${name}/tags/list`, need: "pull" },
    { method: "GET", path: `/v2/${name}/manifests/latest`, need: "pull" },
    { method: "HEAD", path: `/v2/${name}/manifests/latest`, need: "pull" },
    { method: "GET", path: `/v2/${name}/manifests/${manifestDigest}`, need: "pull" },
    {
      method: "PUT",
      path: `/v2/${name}/manifests/other`,
      need: "push",
      headers: { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
      body: manifest,
    },
    { method: "DELETE", path: `/v2/${name}/manifests/${manifestDigest}`, need: "delete" },
    { method: "DELETE", path: `/v2/${name}/manifests/latest`, need: "delete" },
    { method: "GET", path: `/v2/${name}/blobs/${blobDigest}`, need: "pull" },
    { method: "HEAD", path: `/v2/${name}/blobs/${blobDigest}`, need: "pull" },
    { method: "DELETE", path: `/v2/${name}/blobs/${blobDigest}`, need: "delete" },
    { method: "POST", path: `/v2/${name}/blobs/uploads/`, need: "push" },
    {
      method: "POST",
      path: `/v2/${name}/blobs/uploads/?digest=${blobDigest}`,
      need: "push",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob,
    },
    {
      method: "POST",
      path: `/v2/${name}/blobs/uploads/?mount=${blobDigest}&from=${from}`,
      need: "push",
    },
    { method: "GET", path: upload, need: "push" },
    {
      method: "PATCH",
      path: upload,
      need: "push",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob,
    },
    { method: "PUT", path: `${upload}?digest=${blobDigest}`, need: "push", body: blob },
    { method: "DELETE", path: upload, need: "push" },
    { method: "GET", path: `/v2/${name}/referrers/${manifestDigest}`, need: "pull" },
    { method: "HEAD", path: `/v2/${name}/referrers/${manifestDigest}`, need: "pull" },
  ];
}
