// The UI's registry client: requests to the registry's API the way docker and podman make them.
// It learns the auth mode from the challenge `/v2/` answers with: Basic (htpasswd) sends the
// credentials on every request; Bearer (token mode) gets a token per scope from the realm, with
// Basic credentials once at login (the OAuth2 password grant, `access_type=offline`) and the
// refresh token afterwards, or anonymously. The session (Basic credentials or the refresh token,
// never a password in token mode) lives in sessionStorage: this tab, until it closes or logs out.
// Requests never carry cookies (`credentials: "omit"`), so a Basic challenge never makes the
// browser show its own login dialog.

/** An answer of the registry that is not a success, with the spec's error code when it has one. */
export class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

/** The request needs a login (or a login with more rights). */
export class LoginRequired extends RegistryError {
  constructor(message = "log in to see this") {
    super(401, "UNAUTHORIZED", message);
    this.name = "LoginRequired";
  }
}

type Mode = "open" | "basic" | "bearer";

interface Session {
  user: string;
  /** htpasswd mode: base64 of user:password. */
  basic?: string;
  /** token mode: the refresh token. */
  refresh?: string;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

const SESSION_KEY = "berth-session";

/** `Bearer realm="...",service="..."` → scheme and parameters. */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (header === null) return undefined;
  const match = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (match === null) return undefined;
  const params: Record<string, string> = {};
  for (const [, key, value] of match[2]!.matchAll(/(\w+)="([^"]*)"/g)) {
    params[key!.toLowerCase()] = value!;
  }
  return { scheme: match[1]!.toLowerCase(), params };
}

/** The `next` URL of a Link header, if any. */
export function nextLink(header: string | null): string | undefined {
  if (header === null) return undefined;
  return /<([^>]+)>\s*;\s*rel="?next"?/.exec(header)?.[1];
}

/** The repository a `/v2/<name>/...` or `/v2/_berth/tags/<name>` path is about. */
function repositoryOf(path: string): string | undefined {
  const bare = path.split("?")[0]!;
  if (bare.startsWith("/v2/_berth/tags/")) return bare.slice("/v2/_berth/tags/".length);
  const match = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(bare);
  return match?.[1];
}

async function errorOf(response: Response): Promise<RegistryError> {
  let code: string | undefined;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    if (first?.code !== undefined) code = first.code;
    if (first?.message !== undefined) message = first.message;
  } catch {
    // Not the error envelope: keep the status line.
  }
  return new RegistryError(response.status, code, message);
}

/** The registry API below `api` (the http.prefix, "" when none). */
export class RegistryClient {
  private mode: Mode | undefined;
  private probing: Promise<void> | undefined;
  private realm = "";
  private service = "";
  private readonly tokens = new Map<string, { token: string; expires: number }>();
  private session: Session | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(readonly api: string) {
    try {
      const saved = sessionStorage.getItem(SESSION_KEY);
      if (saved !== null) this.session = JSON.parse(saved) as Session;
    } catch {
      this.session = undefined;
    }
  }

  /** The logged-in user, if any. */
  get user(): string | undefined {
    return this.session?.user;
  }

  /** Whether the registry asks for credentials at all (known after the first request). */
  get hasAuth(): boolean {
    return this.mode === "basic" || this.mode === "bearer";
  }

  /** Calls `listener` when the session changes; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setSession(session: Session | undefined): void {
    this.session = session;
    this.tokens.clear();
    if (session === undefined) sessionStorage.removeItem(SESSION_KEY);
    else sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    for (const listener of this.listeners) listener();
  }

  /** Asks `/v2/` once how the registry authenticates. */
  probe(): Promise<void> {
    if (this.mode !== undefined) return Promise.resolve();
    this.probing ??= (async () => {
      try {
        const response = await fetch(`${this.api}/v2/`, { credentials: "omit", cache: "no-store" });
        this.learn(response);
        if (this.mode === undefined) this.mode = "open";
      } finally {
        this.probing = undefined;
      }
    })();
    return this.probing;
  }

  private learn(response: Response): void {
    if (response.status !== 401) return;
    const challenge = parseChallenge(response.headers.get("WWW-Authenticate"));
    if (challenge?.scheme === "basic") this.mode = "basic";
    if (challenge?.scheme === "bearer") {
      this.mode = "bearer";
      this.realm = challenge.params.realm ?? "";
      this.service = challenge.params.service ?? "";
    }
  }

  /** A token for `scopes` from the realm: by refresh token when logged in, else anonymous. */
  private async token(key: string, scopes: string[]): Promise<string> {
    const cached = this.tokens.get(key);
    if (cached !== undefined && cached.expires > Date.now()) return cached.token;
    let response: Response;
    const refresh = this.session?.refresh;
    if (refresh !== undefined) {
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: refresh,
        service: this.service,
        scope: scopes.join(" "),
        client_id: "berth-ui",
      });
      response = await fetch(this.realm, { method: "POST", body: form, credentials: "omit" });
    } else {
      const query = new URLSearchParams({ service: this.service });
      for (const scope of scopes) query.append("scope", scope);
      response = await fetch(`${this.realm}?${query}`, { credentials: "omit" });
    }
    if (response.status === 401 && refresh !== undefined) {
      this.setSession(undefined);
      throw new LoginRequired("the session has expired: log in again");
    }
    if (!response.ok) {
      throw new RegistryError(
        response.status,
        undefined,
        `the token service answered ${response.status}`,
      );
    }
    const body = (await response.json()) as {
      token?: string;
      access_token?: string;
      expires_in?: number;
    };
    const token = body.token ?? body.access_token ?? "";
    // Renew a little before the token runs out.
    const lifetime = Math.max(10, (body.expires_in ?? 60) - 10) * 1000;
    this.tokens.set(key, { token, expires: Date.now() + lifetime });
    return token;
  }

  /** The Authorization header for a request to `path`, if the registry wants one. */
  private async authorization(path: string): Promise<string | undefined> {
    if (this.mode === "basic") {
      return this.session?.basic === undefined ? undefined : `Basic ${this.session.basic}`;
    }
    if (this.mode !== "bearer") return undefined;
    const name = repositoryOf(path);
    // One token per repository, asking for delete too: the token service grants what the rules
    // allow, so the UI learns whether the user may delete without a second login.
    const scopes =
      name !== undefined
        ? [`repository:${name}:pull`, `repository:${name}:delete`]
        : path.startsWith("/v2/_catalog")
          ? ["registry:catalog:*"]
          : [];
    return `Bearer ${await this.token(name ?? scopes.join(" "), scopes)}`;
  }

  /**
   * A request to `path` below the API prefix (`/v2/...`); a Link URL (with the prefix) works too.
   * Rejects with LoginRequired for 401 and RegistryError for any other failure.
   */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    if (this.api !== "" && path.startsWith(`${this.api}/v2/`)) path = path.slice(this.api.length);
    await this.probe();
    const send = async (): Promise<Response> => {
      const headers = new Headers(init.headers);
      const authorization = await this.authorization(path);
      if (authorization !== undefined) headers.set("Authorization", authorization);
      return fetch(`${this.api}${path}`, {
        ...init,
        headers,
        credentials: "omit",
        cache: "no-store",
      });
    };
    let response = await send();
    if (response.status === 401) {
      const before = this.mode;
      this.learn(response);
      // The registry's auth changed since the probe (a restart): try once more the new way.
      if (this.mode !== before) response = await send();
    }
    if (response.status === 401) {
      throw new LoginRequired(
        this.user === undefined ? "log in to see this" : "your login does not allow this",
      );
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }

  /** GET `path` as JSON, with the response's headers. */
  async json<T>(path: string, accept?: string): Promise<{ body: T; headers: Headers }> {
    const response = await this.request(
      path,
      accept === undefined ? {} : { headers: { Accept: accept } },
    );
    return { body: (await response.json()) as T, headers: response.headers };
  }

  /**
   * Logs in the way clients do: htpasswd mode checks the credentials against `/v2/`; token mode
   * asks the realm for a token with the OAuth2 password grant and keeps its refresh token.
   * Rejects with a message for the form.
   */
  async login(user: string, password: string): Promise<void> {
    await this.probe();
    if (this.mode === "open")
      throw new Error("this registry has no login: everyone may see everything");
    let response: Response;
    const basic = btoa(String.fromCharCode(...new TextEncoder().encode(`${user}:${password}`)));
    if (this.mode === "basic") {
      response = await fetch(`${this.api}/v2/`, {
        headers: { Authorization: `Basic ${basic}` },
        credentials: "omit",
        cache: "no-store",
      });
    } else {
      const form = new URLSearchParams({
        grant_type: "password",
        username: user,
        password,
        service: this.service,
        access_type: "offline",
        client_id: "berth-ui",
      });
      response = await fetch(this.realm, { method: "POST", body: form, credentials: "omit" });
    }
    if (response.status === 401) throw new Error("wrong user name or password");
    if (response.status === 429)
      throw new Error("too many failed attempts: wait a minute and try again");
    if (!response.ok) throw new Error(`login failed: the registry answered ${response.status}`);
    if (this.mode === "basic") {
      this.setSession({ user, basic });
      return;
    }
    const body = (await response.json()) as { refresh_token?: string };
    if (body.refresh_token === undefined)
      throw new Error("login failed: the token service gave no refresh token");
    this.setSession({ user, refresh: body.refresh_token });
  }

  /** Forgets the session and every token. */
  logout(): void {
    this.setSession(undefined);
  }
}
