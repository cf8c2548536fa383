// htpasswd mode over HTTP, with access rules: every endpoint without credentials, with wrong ones
// and with each action missing, counted; what the rules allow; provisioning of a missing file;
// throttling; the access log's user. htpasswd files are written by apache2-utils' `htpasswd -B`.

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startRegistry } from "../server/index.js";
import { endpointCases, writeHtpasswd, type EndpointCase } from "../testing/auth.js";
import {
  basicAuthorization,
  errorCode,
  pushBlob,
  pushImage,
  startTestRegistry,
  type TestRegistry,
} from "../testing/harness.js";
import { captureLogger } from "../testing/logger.js";
import { commonCost, dummyHash } from "./htpasswd.js";
import { skipUnlessCommands } from "../testing/tools.js";

const skip = skipUnlessCommands(["htpasswd"], ["apache2-utils"]);
const REALM = "berth-test";

const USERS = {
  admin: "admin-secret",
  nopull: "nopull-secret",
  nopush: "nopush-secret",
  nodelete: "nodelete-secret",
  outsider: "outsider-secret",
};
type User = keyof typeof USERS;
const basic = (user: User): string => basicAuthorization(user, USERS[user]);

const ACCESS_CONTROL = {
  groups: { writers: ["nodelete"] },
  repositories: {
    "team/**": {
      policies: [
        { users: ["nopull"], actions: ["push", "delete"] },
        { users: ["nopush"], actions: ["pull", "delete"] },
        { groups: ["writers"], actions: ["pull", "push"] },
      ],
    },
    "public/*": { anonymousPolicy: ["pull"] },
  },
  adminPolicy: { users: ["admin"], actions: ["*"] },
};

/** The user lacking exactly `action` on team/**. */
const LACKING = { pull: "nopull", push: "nopush", delete: "nodelete" } as const;

function send(
  registry: TestRegistry,
  check: EndpointCase,
  authorization?: string,
): Promise<Response> {
  const headers: Record<string, string> = { ...check.headers };
  if (authorization !== undefined) headers.Authorization = authorization;
  return fetch(registry.url + check.path, {
    method: check.method,
    headers,
    body: check.body,
    redirect: "manual",
  });
}

describe("htpasswd mode with access rules", { skip }, () => {
  let dir: string;
  let registry: TestRegistry;
  let cases: EndpointCase[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-htpasswd-"));
    await writeHtpasswd(join(dir, "htpasswd"), USERS);
    registry = await startTestRegistry({
      auth: {
        htpasswd: { realm: REALM, path: join(dir, "htpasswd") },
        accesscontrol: ACCESS_CONTROL,
        throttle: { attempts: 0 },
      },
      authorization: basic("admin"),
    });
    const image = await pushImage(registry, "team/app", "latest");
    const blobDigest = await pushBlob(registry, "team/src", "mountable");
    await pushBlob(registry, "team/app", "mountable");
    const upload = await registry.fetch("/v2/team/app/blobs/uploads/", { method: "POST" });
    assert.equal(upload.status, 202);
    cases = endpointCases({
      name: "team/app",
      manifestDigest: image.digest,
      blobDigest,
      upload: upload.headers.get("location")!,
      from: "team/src",
    });
  });
  after(async () => {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The registry's state as the admin sees it, to show that no refused request changed it. */
  async function state(): Promise<string> {
    const parts = [];
    for (const path of ["/v2/_catalog", "/v2/team/app/tags/list", "/v2/team/src/tags/list"]) {
      const response = await registry.fetch(path);
      parts.push(`${path} ${response.status} ${await response.text()}`);
    }
    for (const check of cases.filter((c) => c.method === "GET" && c.need !== "login")) {
      const response = await registry.fetch(check.path);
      parts.push(
        `${check.path} ${response.status} ${response.headers.get("docker-content-digest")}`,
      );
      await response.arrayBuffer();
    }
    return parts.join("\n");
  }

  it("refuses every endpoint without credentials and with wrong ones: 401, Basic challenge", async () => {
    const before = await state();
    const refusals = { none: 0, wrongPassword: 0, unknownUser: 0, malformed: 0 };
    const attempts: [keyof typeof refusals, string | undefined][] = [
      ["none", undefined],
      ["wrongPassword", basicAuthorization("admin", "not-the-password")],
      ["unknownUser", basicAuthorization("mallory", "admin-secret")],
      ["malformed", "Basic !!!not-base64"],
    ];
    for (const check of cases) {
      for (const [kind, authorization] of attempts) {
        const response = await send(registry, check, authorization);
        const what = `${kind}: ${check.method} ${check.path}`;
        assert.equal(response.status, 401, what);
        assert.equal(response.headers.get("www-authenticate"), `Basic realm="${REALM}"`, what);
        if (check.method !== "HEAD") assert.equal(await errorCode(response), "UNAUTHORIZED", what);
        else await response.arrayBuffer();
        refusals[kind]++;
      }
    }
    assert.deepEqual(refusals, { none: 24, wrongPassword: 24, unknownUser: 24, malformed: 24 });
    assert.equal(await state(), before);
  });

  it("refuses each endpoint to a user lacking the action it needs: 403 DENIED", async () => {
    const before = await state();
    let refused = 0;
    for (const check of cases) {
      if (check.need === "login" || check.need === "catalog") continue;
      const users: User[] = [LACKING[check.need], "outsider"];
      for (const user of users) {
        const response = await send(registry, check, basic(user));
        const what = `${user}: ${check.method} ${check.path}`;
        assert.equal(response.status, 403, what);
        if (check.method !== "HEAD") assert.equal(await errorCode(response), "DENIED", what);
        else await response.arrayBuffer();
        refused++;
      }
    }
    assert.equal(refused, 40);
    assert.equal(await state(), before);
  });

  it("lets each user do what the rules grant", async () => {
    const granted = async (user: User, method: string, path: string): Promise<number> => {
      const response = await registry.fetch(path, {
        method,
        headers: { Authorization: basic(user) },
      });
      await response.arrayBuffer();
      return response.status;
    };
    assert.equal(await granted("nopush", "GET", "/v2/team/app/manifests/latest"), 200);
    assert.equal(await granted("nodelete", "GET", "/v2/team/app/tags/list"), 200);
    assert.equal(await granted("nodelete", "POST", "/v2/team/app/blobs/uploads/"), 202);
    // Pushing needs pull as well, as in distribution (clients ask for `pull,push`).
    assert.equal(await granted("nopull", "POST", "/v2/team/new/blobs/uploads/"), 403);
    assert.equal(await granted("outsider", "GET", "/v2/"), 200);
    // Anonymous pull of public/*, but nothing else.
    await pushImage(registry, "public/base", "v1");
    assert.equal((await fetch(`${registry.url}/v2/public/base/manifests/v1`)).status, 200);
    assert.equal((await fetch(`${registry.url}/v2/public/base/tags/list`)).status, 200);
    const anonymousPush = await fetch(`${registry.url}/v2/public/base/blobs/uploads/`, {
      method: "POST",
    });
    assert.equal(anonymousPush.status, 401);
    assert.equal((await fetch(`${registry.url}/v2/public/base/sub/tags/list`)).status, 401);
  });

  it("lists in _catalog only the repositories the caller may pull", async () => {
    const catalog = async (user: User): Promise<string[]> => {
      const response = await registry.fetch("/v2/_catalog", {
        headers: { Authorization: basic(user) },
      });
      assert.equal(response.status, 200);
      return ((await response.json()) as { repositories: string[] }).repositories;
    };
    const all = await catalog("admin");
    assert.ok(
      all.includes("team/app") && all.includes("team/src") && all.includes("public/base"),
      all.join(),
    );
    assert.ok(all.includes("team/app") && all.includes("team/src") && all.includes("public/base"));
    assert.deepEqual(await catalog("outsider"), ["public/base"]);
    assert.deepEqual(await catalog("nopull"), ["public/base"]);
    assert.deepEqual(await catalog("nopush"), ["public/base", "team/app", "team/src"]);
    const page = await registry.fetch("/v2/_catalog?n=1", {
      headers: { Authorization: basic("outsider") },
    });
    assert.deepEqual(await page.json(), { repositories: ["public/base"] });
  });

  it("mounts across repositories only with pull on the source, else starts an upload", async () => {
    const digest = await pushBlob(registry, "secret/vault", "mount me if you can");
    const mount = (user: User, from: string): Promise<Response> =>
      registry.fetch(`/v2/team/app/blobs/uploads/?mount=${digest}&from=${from}`, {
        method: "POST",
        headers: { Authorization: basic(user) },
      });
    assert.equal((await mount("nodelete", "secret/vault")).status, 202);
    const blob = await registry.fetch(`/v2/team/app/blobs/${digest}`, { method: "HEAD" });
    assert.equal(blob.status, 404, "the refused mount did not link the blob");
    // Without `from`, Berth would look everywhere: not for a restricted caller.
    const anywhere = await registry.fetch(`/v2/team/app/blobs/uploads/?mount=${digest}`, {
      method: "POST",
      headers: { Authorization: basic("nodelete") },
    });
    assert.equal(anywhere.status, 202);
    assert.equal((await mount("admin", "secret/vault")).status, 201);
  });
});

describe("htpasswd mode: files, throttling, logs", { skip }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-htpasswd-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("creates a missing htpasswd file with user docker and logs its password once", async () => {
    const path = join(dir, "new", "htpasswd");
    const { logger, lines } = captureLogger();
    const running = await startRegistry({
      driver: "inmemory",
      auth: { htpasswd: { realm: REALM, path } },
      logger,
    });
    try {
      const provisioned = lines.find(
        (line) => line.msg === "htpasswd is missing, provisioning with default user",
      );
      assert.ok(provisioned, "the provisioning is logged");
      assert.equal(provisioned.user, "docker");
      const password = provisioned.password as string;
      assert.match(password, /^[A-Za-z0-9_-]{43}$/);
      assert.equal((await stat(path)).mode & 0o777, 0o600);
      assert.match(await readFile(path, "utf8"), /^docker:\$2[ab]\$10\$/);
      const ok = await fetch(`${running.url}/v2/`, {
        headers: { Authorization: basicAuthorization("docker", password) },
      });
      assert.equal(ok.status, 200);
      assert.equal(lines.filter((line) => JSON.stringify(line).includes(password)).length, 1);
    } finally {
      await running.close();
    }
    // A second start finds the file and provisions nothing.
    const again = captureLogger();
    const second = await startRegistry({
      driver: "inmemory",
      auth: { htpasswd: { realm: REALM, path } },
      logger: again.logger,
    });
    await second.close();
    assert.ok(!again.lines.some((line) => "password" in line));
  });

  it("throttles failed logins per user (429, Retry-After) and names users in the access log", async () => {
    const path = join(dir, "throttle");
    await writeHtpasswd(path, { alice: "alice-pw", bob: "bob-pw" });
    const { logger, lines } = captureLogger();
    const running = await startRegistry({
      driver: "inmemory",
      auth: { htpasswd: { realm: REALM, path }, throttle: { attempts: 3, window: "1m" } },
      logger,
    });
    const get = (user: string, password: string): Promise<Response> =>
      fetch(`${running.url}/v2/`, {
        headers: { Authorization: basicAuthorization(user, password) },
      });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await get("alice", "wrong")).status, 401);
      const blocked = await get("alice", "wrong");
      assert.equal(blocked.status, 429);
      assert.equal(await errorCode(blocked), "TOOMANYREQUESTS");
      const retryAfter = Number(blocked.headers.get("retry-after"));
      assert.ok(retryAfter > 0 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      // Blocked even with the right password until the window ends; other users are not.
      assert.equal((await get("alice", "alice-pw")).status, 429);
      assert.equal((await get("bob", "bob-pw")).status, 200);
      await running.close();
      const access = lines.filter((line) => line.msg === "request");
      assert.equal(access.at(-1)!.user, "bob");
      assert.ok(access.slice(0, 4).every((line) => line.user === undefined));
      const text = JSON.stringify(lines);
      for (const secret of [
        "alice-pw",
        "bob-pw",
        "wrong",
        Buffer.from("bob:bob-pw").toString("base64"),
      ]) {
        assert.ok(!text.includes(secret), `${secret} is not logged`);
      }
    } finally {
      await running.close();
    }
  });

  it("reads the file again when it changes, and warns when auth is served over plain HTTP", async () => {
    const path = join(dir, "reload");
    await writeHtpasswd(path, { alice: "alice-pw" });
    const { logger, lines } = captureLogger();
    const running = await startRegistry({
      driver: "inmemory",
      host: "0.0.0.0",
      auth: { htpasswd: { realm: REALM, path } },
      logger,
    });
    try {
      assert.ok(lines.some((line) => String(line.msg).includes("auth is on over plain HTTP")));
      const url = `http://127.0.0.1:${running.port}/v2/`;
      const as = (user: string, password: string): Promise<Response> =>
        fetch(url, { headers: { Authorization: basicAuthorization(user, password) } });
      assert.equal((await as("carol", "carol-pw")).status, 401);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await writeHtpasswd(path, { carol: "carol-pw" });
      assert.equal((await as("carol", "carol-pw")).status, 200);
      assert.equal((await as("alice", "alice-pw")).status, 401);
    } finally {
      await running.close();
    }
  });
});

describe("htpasswd: an unknown user's check", () => {
  it("runs bcrypt at the cost most entries have (a miss costs what a hit costs)", async () => {
    const at = (cost: number) => `$2y$${String(cost).padStart(2, "0")}$${"a".repeat(53)}`;
    assert.equal(commonCost([at(5), at(12), at(12)]), 12);
    assert.equal(commonCost([at(5)]), 5);
    // An empty file: the cost of a provisioned password, distribution's bcrypt.DefaultCost.
    assert.equal(commonCost([]), 10);
    const hash = await dummyHash(6);
    assert.match(hash, /^\$2[aby]\$06\$/);
    assert.equal(await dummyHash(6), hash, "made again for the same cost");
  });
});
