// Token mode (config `auth.token`): a Bearer token verified as distribution does, whose `access`
// claim must grant what the request needs. No token: 401 with the Bearer challenge naming the
// realm, the service and the scope the request needs; an invalid token: the same with
// `error="invalid_token"`; a valid one lacking an action: `error="insufficient_scope"`.

import type { IncomingMessage } from "node:http";
import type { AccessNeed, AuthorizeHook, Caller } from "../api/index.js";
import { parseBearer, quoted, scopeParameter, unauthorized } from "./challenge.js";
import type { AuthLogger, TokenOptions } from "./options.js";
import type { AccessRules } from "./rules.js";
import { grants, InvalidTokenError, type TokenVerifier, type VerifiedToken } from "./token.js";

/** The realm of the challenge: configured, or built from the request with `autoredirect`. */
export function realmOf(options: TokenOptions, req: IncomingMessage): string {
  if (!options.autoRedirect) return options.realm;
  const forwarded = req.headers["x-forwarded-proto"];
  const proto =
    typeof forwarded === "string" && /^https?$/i.test(forwarded)
      ? forwarded.toLowerCase()
      : "encrypted" in req.socket && req.socket.encrypted
        ? "https"
        : "http";
  return `${proto}://${req.headers.host ?? "localhost"}${options.autoRedirectPath}`;
}

function challenge(
  options: TokenOptions,
  req: IncomingMessage,
  needs: readonly AccessNeed[],
  error?: "invalid_token" | "insufficient_scope",
): string {
  let value = `Bearer realm=${quoted(realmOf(options, req))},service=${quoted(options.service)}`;
  if (needs.length > 0) value += `,scope=${quoted(scopeParameter(needs))}`;
  if (error !== undefined) value += `,error=${quoted(error)}`;
  return value;
}

function tokenCaller(token: VerifiedToken, rules: AccessRules): Caller {
  const { subject, access } = token;
  return {
    user: subject,
    may: (name, action) => grants(access, "repository", name, action),
    // With rules, the catalog shows what they let the subject pull; without, everything (the
    // token server granted registry:catalog:*, as with distribution).
    lists: (name) => !rules.configured || rules.actions(subject, name).has("pull"),
    unrestricted: false,
  };
}

/** The authorize hook of token mode. */
export function bearerAuthorizer(
  options: TokenOptions,
  verifier: TokenVerifier,
  rules: AccessRules,
  logger: AuthLogger,
): AuthorizeHook {
  return async ({ req, needs }) => {
    const raw = parseBearer(req.headers.authorization);
    if (raw === undefined) throw unauthorized(challenge(options, req, needs));
    let token: VerifiedToken;
    try {
      token = await verifier.verify(raw);
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      logger.warn({ reason: error.message, remoteAddr: req.socket.remoteAddress }, "token refused");
      throw unauthorized(challenge(options, req, needs, "invalid_token"), "invalid token");
    }
    const missing = needs.some((need) =>
      need.actions.some((action) => !grants(token.access, need.type, need.name, action)),
    );
    if (missing) {
      throw unauthorized(
        challenge(options, req, needs, "insufficient_scope"),
        "insufficient scope: the token does not grant what the request needs",
      );
    }
    return tokenCaller(token, rules);
  };
}
