// The built-in token service over HTTP: Docker's GET protocol (Basic credentials or none, scope and
// service, offline_token) and the OAuth2 POST form (password and refresh_token grants); tokens
// carry only what the access rules grant; refresh tokens are no access tokens; the signing key is
// generated once and kept.

import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { writeHtpasswd } from "../testing/auth.js";
import { basicAuthorization } from "../testing/harness.js";
import { skipUnlessCommands } from "../testing/tools.js";

const skip = skipUnlessCommands(["htpasswd"], ["apache2-utils"]);
const SERVICE = "berth.test";

interface TokenAnswer {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  refresh_token?: string;
}

describe("built-in token service", { skip }, () => {
  let dir: string;
  let registry: RunningRegistry;
  let auth: Record<string, unknown>;

  const start = (): Promise<RunningRegistry> =>
    startRegistry({ driver: "inmemory", deleteEnabled: true, auth, logLevel: "silent" });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-issuer-"));
    await writeHtpasswd(join(dir, "users"), { alice: "alice-pw", bob: "bob-pw" });
    auth = {
      token: {
        realm: "unused when autoredirect is on",
        autoredirect: true,
        service: SERVICE,
        issuer: "berth-issuer",
        issue: {
          users: join(dir, "users"),
          key: join(dir, "keys", "signing.pem"),
          expiration: "2m",
        },
      },
      accesscontrol: {
        repositories: {
          "team/**": { policies: [{ users: ["alice"], actions: ["pull", "push"] }] },
          "public/**": { anonymousPolicy: ["pull"] },
        },
        adminPolicy: { users: ["bob"], actions: ["*"] },
      },
      throttle: { attempts: 3 },
    };
    registry = await start();
  });
  after(async () => {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });

  const tokenUrl = (query: string): string => `${registry.url}/auth/token?${query}`;
  async function getToken(query: string, user?: string, password?: string): Promise<TokenAnswer> {
    const headers: Record<string, string> = {};
    if (user !== undefined) headers.Authorization = basicAuthorization(user, password!);
    const response = await fetch(tokenUrl(query), { headers });
    assert.equal(response.status, 200, await response.clone().text());
    return (await response.json()) as TokenAnswer;
  }
  const accessOf = (token: string): unknown => decodeJwt(token).access;

  it("challenges with its own realm, built from the request, and generates its key once", async () => {
    const response = await fetch(`${registry.url}/v2/team/app/tags/list`);
    assert.equal(response.status, 401);
    assert.equal(
      response.headers.get("www-authenticate"),
      `Bearer realm="${registry.url}/auth/token",service="${SERVICE}",scope="repository:team/app:pull"`,
    );
    assert.equal((await stat(join(dir, "keys", "signing.pem"))).mode & 0o777, 0o600);
  });

  it("grants on GET only the requested actions the rules allow", async () => {
    const answer = await getToken(
      `service=${SERVICE}&scope=repository:team/app:pull,push,delete&scope=repository:secret/x:pull`,
      "alice",
      "alice-pw",
    );
    assert.equal(answer.token, answer.access_token);
    assert.equal(answer.expires_in, 120);
    assert.ok(Date.parse(answer.issued_at) <= Date.now());
    assert.equal(answer.refresh_token, undefined);
    assert.deepEqual(accessOf(answer.token), [
      { type: "repository", name: "team/app", actions: ["pull", "push"] },
      { type: "repository", name: "secret/x", actions: [] },
    ]);
    const claims = decodeJwt(answer.token);
    assert.equal(claims.sub, "alice");
    assert.equal(claims.iss, "berth-issuer");
    assert.equal(claims.aud, SERVICE);
    assert.equal(decodeProtectedHeader(answer.token).alg, "ES256");

    const bearer = { Authorization: `Bearer ${answer.token}` };
    const upload = await fetch(`${registry.url}/v2/team/app/blobs/uploads/`, {
      method: "POST",
      headers: bearer,
    });
    assert.equal(upload.status, 202);
    const remove = await fetch(`${registry.url}/v2/team/app/manifests/latest`, {
      method: "DELETE",
      headers: bearer,
    });
    assert.equal(remove.status, 401);
    assert.match(remove.headers.get("www-authenticate")!, /error="insufficient_scope"/);
  });

  it("gives anonymous callers the anonymous policy and nothing else", async () => {
    const answer = await getToken(
      `service=${SERVICE}&scope=repository:public/base:pull,push&scope=repository:team/app:pull&scope=registry:catalog:*`,
    );
    assert.equal(decodeJwt(answer.token).sub, "");
    assert.deepEqual(accessOf(answer.token), [
      { type: "repository", name: "public/base", actions: ["pull"] },
      { type: "repository", name: "team/app", actions: [] },
      { type: "registry", name: "catalog", actions: [] },
    ]);
  });

  it("refuses wrong credentials and an unknown service, and throttles", async () => {
    const wrong = await fetch(tokenUrl(`service=${SERVICE}`), {
      headers: { Authorization: basicAuthorization("bob", "nope") },
    });
    assert.equal(wrong.status, 401);
    const other = await fetch(tokenUrl("service=elsewhere"), {
      headers: { Authorization: basicAuthorization("bob", "bob-pw") },
    });
    assert.equal(other.status, 400);
    for (let i = 0; i < 2; i++) {
      const response = await fetch(tokenUrl(`service=${SERVICE}`), {
        headers: { Authorization: basicAuthorization("bob", "nope") },
      });
      assert.equal(response.status, 401);
    }
    const throttled = await fetch(tokenUrl(`service=${SERVICE}`), {
      headers: { Authorization: basicAuthorization("bob", "bob-pw") },
    });
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers.get("retry-after")) > 0);
  });

  it("speaks OAuth2: password grant with a refresh token, refresh grant, and no refresh as access", async () => {
    const post = (form: Record<string, string>): Promise<Response> =>
      fetch(`${registry.url}/auth/token`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form).toString(),
      });
    const first = await post({
      grant_type: "password",
      username: "alice",
      password: "alice-pw",
      service: SERVICE,
      scope: "repository:team/app:pull repository:team/app:push",
      client_id: "test",
      access_type: "offline",
    });
    assert.equal(first.status, 200);
    const answer = (await first.json()) as TokenAnswer;
    assert.ok(answer.refresh_token);
    assert.deepEqual(accessOf(answer.access_token), [
      { type: "repository", name: "team/app", actions: ["pull"] },
      { type: "repository", name: "team/app", actions: ["push"] },
    ]);
    const refreshed = await post({
      grant_type: "refresh_token",
      refresh_token: answer.refresh_token,
      service: SERVICE,
      scope: "repository:team/app:pull",
      client_id: "test",
    });
    assert.equal(refreshed.status, 200);
    const again = (await refreshed.json()) as TokenAnswer;
    assert.deepEqual(accessOf(again.access_token), [
      { type: "repository", name: "team/app", actions: ["pull"] },
    ]);
    const asAccess = await fetch(`${registry.url}/v2/`, {
      headers: { Authorization: `Bearer ${answer.refresh_token}` },
    });
    assert.equal(asAccess.status, 401, "a refresh token is no access token");
    assert.match(asAccess.headers.get("www-authenticate")!, /error="invalid_token"/);
    assert.equal((await post({ grant_type: "refresh_token", refresh_token: "x" })).status, 401);
    assert.equal((await post({ grant_type: "client_credentials" })).status, 400);
    const badPassword = await post({ grant_type: "password", username: "alice", password: "x" });
    assert.equal(badPassword.status, 401);
    // Docker's GET with offline_token gives a refresh token too.
    const offline = await getToken(`service=${SERVICE}&offline_token=true`, "alice", "alice-pw");
    assert.ok(offline.refresh_token);
  });

  it("keeps its key across restarts: tokens stay valid", async () => {
    const answer = await getToken(
      `service=${SERVICE}&scope=repository:team/app:pull`,
      "alice",
      "alice-pw",
    );
    await registry.close();
    registry = await start();
    assert.notEqual(registry.port, 0);
    const response = await fetch(`${registry.url}/v2/team/app/tags/list`, {
      headers: { Authorization: `Bearer ${answer.token}` },
    });
    // Authorized (the repository does not exist: NAME_UNKNOWN, not 401).
    assert.equal(response.status, 404);
  });
});
