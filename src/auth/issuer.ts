// The built-in token service (config `auth.token.issue`): Berth answers at the realm's path what a
// token server answers docker, podman and skopeo. GET with optional Basic credentials and
// `service`/`scope` query parameters (Docker's token protocol; `offline_token=true` adds a refresh
// token), and the OAuth2 POST form with `grant_type=password` or `refresh_token`. Tokens grant the
// requested actions the access rules allow, nothing more; refresh tokens are signed too (so they
// survive a restart), carry another audience so that they never pass as access tokens, and stop
// working when their user leaves the htpasswd file.

import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { dirname } from "node:path";
import type { Action } from "../api/index.js";
import { checkLogin, type Login } from "./basic.js";
import { parseBasic, quoted } from "./challenge.js";
import { libtrustKeyId, loadJose } from "./keys.js";
import type { AuthLogger, IssueOptions, TokenOptions } from "./options.js";
import type { AccessRules } from "./rules.js";
import { parseScope, type ResourceActions } from "./token.js";

const MAX_FORM = 16 * 1024;
const MAX_SCOPES = 32;

/** The signing key of the service, read from `path` or generated there (EC P-256) when absent. */
export async function loadSigningKey(path: string, logger: AuthLogger): Promise<KeyObject> {
  try {
    return createPrivateKey(await readFile(path, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new Error(`auth.token.issue.key: cannot use ${path}: ${(error as Error).message}`);
    }
  }
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" });
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, pem, { mode: 0o600, flag: "wx" });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return loadSigningKey(path, logger);
    throw error;
  }
  logger.info({ path }, "generated the token signing key");
  return privateKey;
}

/** The JWS algorithm for a private key. */
export function algorithmOf(key: KeyObject): string {
  const type = key.asymmetricKeyType;
  if (type === "rsa") return "RS256";
  if (type === "ed25519") return "EdDSA";
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return "ES256";
    if (curve === "secp384r1") return "ES384";
    if (curve === "secp521r1") return "ES512";
  }
  throw new Error(`auth.token.issue.key: unsupported key type ${type}`);
}

/** A response of the token endpoint. */
interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** Berth's token service. */
export class TokenService {
  private readonly algorithm: string;
  private readonly kid: string;
  private readonly publicKey: KeyObject;

  constructor(
    private readonly options: TokenOptions & { issue: IssueOptions },
    private readonly signingKey: KeyObject,
    private readonly login: Login,
    private readonly rules: AccessRules,
    private readonly logger: AuthLogger,
  ) {
    this.algorithm = algorithmOf(signingKey);
    this.publicKey = createPublicKey(signingKey);
    this.kid = libtrustKeyId(this.publicKey);
  }

  /** The public key tokens are signed with, for the verifier to trust. */
  get verificationKey(): KeyObject {
    return this.publicKey;
  }

  private get refreshAudience(): string {
    return `${this.options.service}#refresh`;
  }

  /** Answers one request to the token endpoint. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    void this.answer(req)
      .catch((error: unknown): Answer => {
        this.logger.error({ err: error }, "token request failed");
        return { status: 500, body: { error: "server_error" } };
      })
      .then(({ status, body, headers }) => {
        const text = JSON.stringify(body);
        res.writeHead(status, {
          ...headers,
          "Content-Type": "application/json",
          "Content-Length": Buffer.byteLength(text),
          "Cache-Control": "no-store",
        });
        res.end(req.method === "HEAD" ? undefined : text);
      });
  }

  private async answer(req: IncomingMessage): Promise<Answer> {
    const url = new URL(req.url ?? "/", "http://berth");
    if (req.method === "GET" || req.method === "HEAD") return this.answerGet(req, url.searchParams);
    if (req.method === "POST") {
      const form = await readForm(req);
      if (form === null) return { status: 400, body: { error: "invalid_request" } };
      return this.answerPost(req, form);
    }
    return { status: 405, body: { error: "invalid_request" }, headers: { Allow: "GET, POST" } };
  }

  /** Docker's token protocol: GET with Basic credentials (or none: anonymous). */
  private async answerGet(req: IncomingMessage, query: URLSearchParams): Promise<Answer> {
    const service = query.get("service");
    if (service !== null && service !== this.options.service) {
      return { status: 400, body: { error: "invalid_request", details: "unknown service" } };
    }
    let user: string | undefined;
    if (req.headers.authorization !== undefined) {
      const credentials = parseBasic(req.headers.authorization);
      const denied = await this.authenticate(req, credentials?.user ?? "", credentials?.password);
      if (denied !== undefined) return denied;
      user = credentials!.user;
    }
    const offline = query.get("offline_token") === "true" && user !== undefined;
    return this.tokens(user, query.getAll("scope").join(" "), offline);
  }

  /** OAuth2: grant_type password or refresh_token, as docker and podman send them. */
  private async answerPost(req: IncomingMessage, form: URLSearchParams): Promise<Answer> {
    const service = form.get("service");
    if (service !== null && service !== this.options.service) {
      return { status: 400, body: { error: "invalid_request", details: "unknown service" } };
    }
    const scope = form.get("scope") ?? "";
    switch (form.get("grant_type")) {
      case "password": {
        const user = form.get("username") ?? "";
        const denied = await this.authenticate(req, user, form.get("password") ?? undefined);
        if (denied !== undefined) return denied;
        return this.tokens(user, scope, form.get("access_type") === "offline");
      }
      case "refresh_token": {
        const user = await this.refreshUser(form.get("refresh_token") ?? "");
        if (user === undefined) return { status: 401, body: { error: "invalid_grant" } };
        return this.tokens(user, scope, false, form.get("refresh_token")!);
      }
      default:
        return { status: 400, body: { error: "unsupported_grant_type" } };
    }
  }

  /** Undefined when the password is `user`'s, else the refusal (401, or 429 when throttled). */
  private async authenticate(
    req: IncomingMessage,
    user: string,
    password: string | undefined,
  ): Promise<Answer | undefined> {
    const challenge = { "WWW-Authenticate": `Basic realm=${quoted(this.options.service)}` };
    if (user === "" || password === undefined) {
      return { status: 401, body: { error: "invalid_grant" }, headers: challenge };
    }
    const result = await checkLogin(this.login, user, password, req.socket.remoteAddress);
    if (result.ok) return undefined;
    if (result.retryAfter > 0) {
      return {
        status: 429,
        body: { error: "too_many_requests" },
        headers: { "Retry-After": String(result.retryAfter) },
      };
    }
    return { status: 401, body: { error: "invalid_grant" }, headers: challenge };
  }

  /** The user of a valid refresh token who is still in the htpasswd file. */
  private async refreshUser(token: string): Promise<string | undefined> {
    try {
      const { jwtVerify } = await loadJose();
      const { payload } = await jwtVerify(token, this.publicKey, {
        algorithms: [this.algorithm],
        issuer: this.options.issuer,
        audience: this.refreshAudience,
        requiredClaims: ["exp", "sub"],
      });
      const user = payload.sub!;
      return (await this.login.users.has(user)) ? user : undefined;
    } catch {
      return undefined;
    }
  }

  /** What `user` may have of the requested scopes. */
  private granted(user: string | undefined, scope: string): ResourceActions[] {
    const access: ResourceActions[] = [];
    const requested = scope.split(" ").filter((entry) => entry !== "");
    for (const entry of requested.slice(0, MAX_SCOPES)) {
      const parsed = parseScope(entry);
      if (parsed === null) continue;
      let actions: string[] = [];
      if (parsed.type === "repository") {
        const allowed = this.rules.actions(user, parsed.name);
        const wanted = parsed.actions.includes("*") ? [...allowed] : parsed.actions;
        actions = wanted.filter((action) => allowed.has(action as Action));
      } else if (parsed.type === "registry" && parsed.name === "catalog" && user !== undefined) {
        actions = ["*"];
      }
      access.push({ type: parsed.type, name: parsed.name, actions: [...new Set(actions)] });
    }
    return access;
  }

  private async tokens(
    user: string | undefined,
    scope: string,
    offline: boolean,
    refreshToken?: string,
  ): Promise<Answer> {
    const access = this.granted(user, scope);
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = Math.max(1, Math.floor(this.options.issue.expirationMs / 1000));
    const token = await this.sign({ access }, user ?? "", this.options.service, now, expiresIn);
    const body: Record<string, unknown> = {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: new Date(now * 1000).toISOString(),
    };
    if (offline && user !== undefined) {
      const lifetime = Math.floor(this.options.issue.refreshExpirationMs / 1000);
      body.refresh_token = await this.sign({}, user, this.refreshAudience, now, lifetime);
    } else if (refreshToken !== undefined) {
      body.refresh_token = refreshToken;
    }
    return { status: 200, body };
  }

  private async sign(
    claims: Record<string, unknown>,
    subject: string,
    audience: string,
    now: number,
    lifetime: number,
  ): Promise<string> {
    const { SignJWT } = await loadJose();
    return new SignJWT(claims)
      .setProtectedHeader({ alg: this.algorithm, kid: this.kid, typ: "JWT" })
      .setIssuer(this.options.issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + lifetime)
      .setJti(randomUUID())
      .sign(this.signingKey);
  }
}

/** The body of a form POST, at most 16 KiB; null when larger or not a form. */
async function readForm(req: IncomingMessage): Promise<URLSearchParams | null> {
  const type = req.headers["content-type"] ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    req.resume();
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_FORM) {
      req.resume();
      return null;
    }
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}
