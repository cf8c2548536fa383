// htpasswd mode (config `auth.htpasswd`): Basic credentials checked against the htpasswd file,
// then the access rules. No credentials: the anonymous policy, else 401 with `Basic realm`; wrong
// ones: 401 (429 once throttled); right ones lacking an action: 403 DENIED. `/v2/` needs
// credentials, as in distribution.

import type { AccessNeed, AuthorizeHook, Caller } from "../api/index.js";
import { denied, parseBasic, quoted, remoteAddress, throttled, unauthorized } from "./challenge.js";
import type { HtpasswdFile } from "./htpasswd.js";
import type { AuthLogger } from "./options.js";
import type { AccessRules } from "./rules.js";
import type { LoginThrottle } from "./throttle.js";

/** What a login check needs: the users, the throttle and where to report failures. */
export interface Login {
  users: HtpasswdFile;
  throttle: LoginThrottle;
  logger: AuthLogger;
}

/** The outcome of a login attempt. */
export type LoginResult = { ok: true } | { ok: false; retryAfter: number };

/** Checks `user`'s password, throttled per user and address; failures are logged by user name. */
export async function checkLogin(
  login: Login,
  user: string,
  password: string,
  address: string | undefined,
): Promise<LoginResult> {
  const keys = { user, address };
  const retryAfter = login.throttle.retryAfter(keys);
  if (retryAfter > 0) return { ok: false, retryAfter };
  if (await login.users.verify(user, password)) {
    login.throttle.succeeded(keys);
    return { ok: true };
  }
  login.throttle.failed(keys);
  login.logger.warn({ user, remoteAddr: address }, "authentication failed");
  return { ok: false, retryAfter: 0 };
}

/** The caller `user` (undefined: anonymous) is under `rules`. */
export function ruledCaller(rules: AccessRules, user: string | undefined): Caller {
  return {
    user,
    may: (name, action) => rules.actions(user, name).has(action),
    lists: (name) => rules.actions(user, name).has("pull"),
    unrestricted: rules.unrestricted(user),
  };
}

/** True when `caller` may do everything `needs` lists (the catalog: any authenticated caller). */
export function allows(caller: Caller, needs: readonly AccessNeed[]): boolean {
  return needs.every((need) =>
    need.type === "registry"
      ? caller.user !== undefined
      : need.actions.every(
          (action) =>
            (action === "pull" || action === "push" || action === "delete") &&
            caller.may(need.name, action),
        ),
  );
}

/** The authorize hook of htpasswd mode. */
export function basicAuthorizer(realm: string, login: Login, rules: AccessRules): AuthorizeHook {
  const challenge = `Basic realm=${quoted(realm)}`;
  return async ({ req, needs }) => {
    const credentials = parseBasic(req.headers.authorization);
    if (credentials === null) {
      const anonymous = ruledCaller(rules, undefined);
      if (needs.length > 0 && allows(anonymous, needs)) return anonymous;
      throw unauthorized(challenge);
    }
    const result = await checkLogin(
      login,
      credentials.user,
      credentials.password,
      remoteAddress(req),
    );
    if (!result.ok)
      throw result.retryAfter > 0 ? throttled(result.retryAfter) : unauthorized(challenge);
    const caller = ruledCaller(rules, credentials.user);
    if (!allows(caller, needs)) throw denied(needs);
    return caller;
  };
}
