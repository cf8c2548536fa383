// Token mode over HTTP against tokens minted as distribution-compatible token servers mint them:
// RS256 with an x5c chain (leaf, intermediate) to a root of the bundle, ES256 with the libtrust
// kid of a bundle certificate's key, EdDSA from a JWKS file. Every endpoint without a token, with
// each kind of invalid token and with each action missing is refused, counted.

import assert from "node:assert/strict";
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { calculateJwkThumbprint, exportJWK, SignJWT } from "jose";
import {
  endpointCases,
  makeRoot,
  makeSigned,
  mintToken,
  unsignedToken,
  type EndpointCase,
  type MintOptions,
  type TestCertificate,
} from "../testing/auth.js";
import {
  errorCode,
  pushBlob,
  pushImage,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";
import { skipUnlessCommands } from "../testing/tools.js";

const skip = skipUnlessCommands(["openssl"], ["openssl"]);
const REALM = "https://auth.example.com/token";
const SERVICE = "berth-test";
const ISSUER = "test-issuer";
const NAME = "team/app";
const ALL = ["pull", "push", "delete"];

function send(registry: TestRegistry, check: EndpointCase, token?: string): Promise<Response> {
  const headers: Record<string, string> = { ...check.headers };
  if (token !== undefined) headers.Authorization = `Bearer ${token}`;
  return fetch(registry.url + check.path, {
    method: check.method,
    headers,
    body: check.body,
    redirect: "manual",
  });
}

/** The scope a case's challenge names. */
function scopeOf(check: EndpointCase): string | undefined {
  switch (check.need) {
    case "login":
      return undefined;
    case "catalog":
      return "registry:catalog:*";
    case "pull":
      return `repository:${NAME}:pull`;
    case "push":
      return `repository:${NAME}:pull,push`;
    case "delete":
      return `repository:${NAME}:delete`;
  }
}

function challenge(check: EndpointCase, error?: string): string {
  let value = `Bearer realm="${REALM}",service="${SERVICE}"`;
  const scope = scopeOf(check);
  if (scope !== undefined) value += `,scope="${scope}"`;
  if (error !== undefined) value += `,error="${error}"`;
  return value;
}

describe("token mode", { skip }, () => {
  let dir: string;
  let root: TestCertificate;
  let leaf: TestCertificate;
  let intermediate: TestCertificate;
  let ecSigner: TestCertificate;
  let strangerLeaf: TestCertificate;
  let stranger: TestCertificate;
  let edKey: KeyObject;
  let registry: TestRegistry;
  let cases: EndpointCase[];

  /** A token signed by the RS256 leaf, its chain in x5c. */
  const chained = (options: Partial<MintOptions> = {}): Promise<string> =>
    mintToken({
      issuer: ISSUER,
      audience: SERVICE,
      key: leaf.key,
      x5c: [leaf.x5c, intermediate.x5c],
      ...options,
    });
  const everything = (name: string): MintOptions["access"] => [
    { type: "repository", name, actions: ALL },
  ];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-token-"));
    root = await makeRoot(dir, "root");
    intermediate = await makeSigned(dir, "intermediate", root, { ca: true });
    leaf = await makeSigned(dir, "leaf", intermediate);
    ecSigner = await makeSigned(dir, "ec-signer", root, { ec: true });
    stranger = await makeRoot(dir, "stranger");
    strangerLeaf = await makeSigned(dir, "stranger-leaf", stranger);
    const bundle = join(dir, "bundle.pem");
    await writeFile(
      bundle,
      (await readFile(root.certPath, "utf8")) + (await readFile(ecSigner.certPath, "utf8")),
    );
    edKey = generateKeyPairSync("ed25519").privateKey;
    const jwk = await exportJWK(generateKeyPairSync("ed25519").publicKey);
    const edJwk = { ...(await exportJWK(edKey)), d: undefined, kid: "ed-key-1" };
    await writeFile(join(dir, "jwks.json"), JSON.stringify({ keys: [edJwk, jwk] }));

    const admin = await chained({
      access: [
        ...everything(NAME)!,
        ...everything("team/src")!,
        { type: "registry", name: "catalog", actions: ["*"] },
      ],
      expiresIn: 3600,
    });
    registry = await startTestRegistry({
      auth: {
        token: {
          realm: REALM,
          service: SERVICE,
          issuer: ISSUER,
          rootcertbundle: bundle,
          jwks: join(dir, "jwks.json"),
        },
      },
      authorization: `Bearer ${admin}`,
    });
    const image = await pushImage(registry, NAME, "latest");
    const blobDigest = await pushBlob(registry, "team/src", "mountable");
    await pushBlob(registry, NAME, "mountable");
    const upload = await registry.fetch(`/v2/${NAME}/blobs/uploads/`, { method: "POST" });
    assert.equal(upload.status, 202);
    cases = endpointCases({
      name: NAME,
      manifestDigest: image.digest,
      blobDigest,
      upload: upload.headers.get("location")!,
      from: "team/src",
    });
  });
  after(async () => {
    await registry?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function state(): Promise<string> {
    const parts = [];
    for (const check of cases.filter((c) => c.method === "GET")) {
      const response = await registry.fetch(check.path);
      parts.push(`${check.path} ${response.status} ${await response.text()}`);
    }
    return parts.join("\n");
  }

  async function assertRefused(
    check: EndpointCase,
    token: string | undefined,
    error: string | undefined,
    what: string,
  ): Promise<void> {
    const response = await send(registry, check, token);
    const label = `${what}: ${check.method} ${check.path}`;
    assert.equal(response.status, 401, label);
    assert.equal(response.headers.get("www-authenticate"), challenge(check, error), label);
    if (check.method !== "HEAD") assert.equal(await errorCode(response), "UNAUTHORIZED", label);
    else await response.arrayBuffer();
  }

  it("accepts tokens minted as token servers mint them", async () => {
    const pull = [{ type: "repository", name: NAME, actions: ["pull"] }];
    const tokens: [string, string][] = [
      ["RS256, x5c chain through an intermediate", await chained({ access: pull })],
      [
        "ES256, libtrust kid of a bundle certificate",
        await mintToken({ issuer: ISSUER, audience: SERVICE, key: ecSigner.key, access: pull }),
      ],
      [
        "ES256, JWK thumbprint kid",
        await mintToken({
          issuer: ISSUER,
          audience: SERVICE,
          key: ecSigner.key,
          kid: await calculateJwkThumbprint(await exportJWK(ecSigner.certificate.publicKey)),
          access: pull,
        }),
      ],
      [
        "EdDSA, kid from the JWKS",
        await mintToken({
          issuer: ISSUER,
          audience: SERVICE,
          key: edKey,
          alg: "EdDSA",
          kid: "ed-key-1",
          access: pull,
        }),
      ],
      ["aud as a list", await chained({ access: pull, audience: ["other", SERVICE] })],
      ["expired within the leeway", await chained({ access: pull, expiresIn: -30 })],
      [
        "ES256, the bundle certificate itself as x5c",
        await mintToken({
          issuer: ISSUER,
          audience: SERVICE,
          key: ecSigner.key,
          x5c: [ecSigner.x5c],
          access: pull,
        }),
      ],
    ];
    for (const [what, token] of tokens) {
      const response = await registry.fetch(`/v2/${NAME}/manifests/latest`, {
        headers: { Authorization: `Bearer ${token}` },
      });
      assert.equal(response.status, 200, what);
      await response.arrayBuffer();
    }
  });

  it("refuses every endpoint without a token: 401 with the Bearer challenge and scope", async () => {
    const before = await state();
    for (const check of cases) await assertRefused(check, undefined, undefined, "no token");
    assert.equal(cases.length, 24);
    assert.equal(await state(), before);
  });

  it("refuses invalid tokens on every endpoint: error=invalid_token", async () => {
    const before = await state();
    const access = [...everything(NAME)!, { type: "registry", name: "catalog", actions: ["*"] }];
    // Signed by a stranger's key while naming the trusted chain.
    const forged = (): Promise<string> => chained({ access, key: strangerLeaf.key });
    const otherKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    const invalid: [string, string][] = [
      ["expired", await chained({ access, expiresIn: -120 })],
      ["not yet valid", await chained({ access, notBefore: 120, expiresIn: 600 })],
      ["other service", await chained({ access, audience: "other-service" })],
      ["other issuer", await chained({ access, issuer: "other-issuer" })],
      ["forged signature", await forged()],
      [
        "alg none",
        unsignedToken({
          iss: ISSUER,
          aud: SERVICE,
          exp: Math.floor(Date.now() / 1000) + 300,
          access,
        }),
      ],
      [
        "key not in bundle (x5c to another root)",
        await chained({ access, key: strangerLeaf.key, x5c: [strangerLeaf.x5c] }),
      ],
      [
        "key not in bundle (kid)",
        await mintToken({ issuer: ISSUER, audience: SERVICE, key: otherKey, access }),
      ],
      ["self-signed chain", await chained({ access, key: stranger.key, x5c: [stranger.x5c] })],
      ["algorithm not accepted (HS256)", await hmacToken(access)],
      ["garbage", "not.a.token"],
    ];
    const counts: Record<string, number> = {};
    for (const [what, token] of invalid) {
      for (const check of cases) await assertRefused(check, token, "invalid_token", what);
      counts[what] = cases.length;
    }
    assert.equal(
      Object.values(counts).reduce((a, b) => a + b),
      11 * 24,
    );
    assert.equal(await state(), before);
  });

  it("refuses each endpoint to a token lacking the action it needs: insufficient_scope", async () => {
    const before = await state();
    let refused = 0;
    for (const check of cases) {
      if (check.need === "login") continue;
      const needed = check.need === "catalog" ? "*" : check.need;
      const tokens = [
        // Every action but the one needed, on the repository (the catalog: all repositories).
        await chained({
          access: [{ type: "repository", name: NAME, actions: ALL.filter((a) => a !== needed) }],
        }),
        // Everything, on another repository.
        await chained({ access: everything("team/other") }),
        // Everything, but the name differs in case.
        await chained({ access: everything("Team/App") }),
      ];
      for (const token of tokens) {
        await assertRefused(check, token, "insufficient_scope", `lacking ${needed}`);
        refused++;
      }
    }
    assert.equal(refused, 22 * 3);
    assert.equal(await state(), before);
  });

  it("a pull-only token pulls and cannot push, delete or read another repository", async () => {
    const token = await chained({
      access: [{ type: "repository", name: NAME, actions: ["pull"] }],
    });
    const as = (method: string, path: string): Promise<Response> =>
      fetch(registry.url + path, { method, headers: { Authorization: `Bearer ${token}` } });
    assert.equal((await as("GET", `/v2/${NAME}/manifests/latest`)).status, 200);
    assert.equal((await as("GET", `/v2/${NAME}/tags/list`)).status, 200);
    assert.equal((await as("POST", `/v2/${NAME}/blobs/uploads/`)).status, 401);
    assert.equal((await as("PUT", `/v2/${NAME}/manifests/x`)).status, 401);
    assert.equal((await as("DELETE", `/v2/${NAME}/manifests/latest`)).status, 401);
    assert.equal((await as("GET", "/v2/team/src/tags/list")).status, 401);
    assert.equal((await as("GET", "/v2/_catalog")).status, 401);
    // A push token without pull on the source: the mount falls back to an upload.
    const pusher = await chained({
      access: [{ type: "repository", name: NAME, actions: ["pull", "push"] }],
    });
    const mount = await fetch(
      `${registry.url}/v2/${NAME}/blobs/uploads/?mount=sha256:${"0".repeat(64)}&from=team/src`,
      { method: "POST", headers: { Authorization: `Bearer ${pusher}` } },
    );
    assert.equal(mount.status, 202);
  });
});

/** A token signed with a shared secret: no token server does this, distribution refuses it. */
async function hmacToken(access: unknown): Promise<string> {
  return new SignJWT({ access })
    .setProtectedHeader({ alg: "HS256", kid: "secret" })
    .setIssuer(ISSUER)
    .setAudience(SERVICE)
    .setExpirationTime("5m")
    .sign(new TextEncoder().encode("a shared secret of enough length"));
}
