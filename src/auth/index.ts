// src/auth: who the caller is and what it may do. From the auth configuration (config.yml's `auth`
// section, or `startRegistry({ auth })`) it builds the API's authorize hook — htpasswd mode or
// token mode, with the access rules — and, with `auth.token.issue`, Berth's own token endpoint.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { AuthorizeHook } from "../api/index.js";
import { basicAuthorizer, type Login } from "./basic.js";
import { bearerAuthorizer } from "./bearer.js";
import { HtpasswdFile, provisionHtpasswd } from "./htpasswd.js";
import { loadSigningKey, TokenService } from "./issuer.js";
import { KeyFileError, TrustedKeys } from "./keys.js";
import type { AuthLogger, AuthOptions } from "./options.js";
import { AccessRules } from "./rules.js";
import { LoginThrottle } from "./throttle.js";
import { TokenVerifier } from "./token.js";

export {
  DEFAULT_THROTTLE,
  type AccessControlOptions,
  type AuthLogger,
  type AuthOptions,
  type HtpasswdOptions,
  type IssueOptions,
  type Policy,
  type RepositoryPolicy,
  type ThrottleOptions,
  type TokenOptions,
} from "./options.js";
export { libtrustKeyId } from "./keys.js";
export { patternRegExp } from "./rules.js";
export { DEFAULT_ALGORITHMS, LEEWAY_SECONDS } from "./token.js";
export { KeyFileError };

/** An endpoint Berth serves outside `/v2/`: the token service, at the realm's path. */
export interface TokenEndpoint {
  /** The request path it answers (without query). */
  readonly path: string;
  handle(req: IncomingMessage, res: ServerResponse): void;
}

/** Authentication and authorization, ready for the server. */
export interface Auth {
  readonly mode: "htpasswd" | "token";
  /** The hook the API asks before each request's handler. */
  readonly authorize: AuthorizeHook;
  /** Berth's token endpoint, with `auth.token.issue`. */
  readonly tokenEndpoint: TokenEndpoint | undefined;
}

/** The path of a realm URL. */
function realmPath(realm: string): string {
  try {
    return new URL(realm).pathname;
  } catch {
    return realm.startsWith("/") ? realm.split("?")[0]! : `/${realm}`;
  }
}

/**
 * Builds the auth of `options`: provisions a missing htpasswd file (logging its password once),
 * reads the root certificates, JWKS and signing key. Rejects with a KeyFileError naming the config
 * key of a file it cannot use.
 */
export async function createAuth(options: AuthOptions, logger: AuthLogger): Promise<Auth> {
  const rules = new AccessRules(options.accessControl);
  const throttle = new LoginThrottle(options.throttle);
  const loginFor = async (path: string, key: string): Promise<Login> => {
    await provisionHtpasswd(path, key, logger);
    return { users: new HtpasswdFile(path, logger), throttle, logger };
  };

  if (options.htpasswd !== undefined) {
    const { realm, path } = options.htpasswd;
    const login = await loginFor(path, "auth.htpasswd.path");
    return {
      mode: "htpasswd",
      authorize: basicAuthorizer(realm, login, rules),
      tokenEndpoint: undefined,
    };
  }
  const token = options.token;
  if (token === undefined) throw new Error("auth: neither htpasswd nor token is configured");

  const keys = new TrustedKeys();
  if (token.rootCertBundle !== undefined) await keys.addBundle(token.rootCertBundle);
  if (token.jwks !== undefined) await keys.addJwks(token.jwks);
  let tokenEndpoint: TokenEndpoint | undefined;
  if (token.issue !== undefined) {
    const issue = token.issue;
    let signingKey;
    try {
      signingKey = await loadSigningKey(issue.key, logger);
    } catch (error) {
      throw new KeyFileError("auth.token.issue.key", (error as Error).message);
    }
    const service = new TokenService(
      { ...token, issue },
      signingKey,
      await loginFor(issue.users, "auth.token.issue.users"),
      rules,
      logger,
    );
    await keys.add(service.verificationKey);
    tokenEndpoint = {
      path: token.autoRedirect ? token.autoRedirectPath : realmPath(token.realm),
      handle: (req, res) => service.handle(req, res),
    };
  }
  const verifier = new TokenVerifier({
    issuer: token.issuer,
    audience: token.service,
    algorithms: token.signingAlgorithms,
    keys,
  });
  return {
    mode: "token",
    authorize: bearerAuthorizer(token, verifier, rules, logger),
    tokenEndpoint,
  };
}
