// The auth configuration, as src/config reads it from config.yml's `auth` section (distribution's
// keys for htpasswd and token, Berth's for access rules, throttling and the built-in token
// service) and as `startRegistry({ auth })` takes it.

import type { Action } from "../api/index.js";

/** `auth.htpasswd`: Basic authentication against an htpasswd file of bcrypt entries. */
export interface HtpasswdOptions {
  realm: string;
  /** The htpasswd file; created with one user and a random password when missing. */
  path: string;
}

/** `auth.token.issue`: Berth's own token service at the realm's path. */
export interface IssueOptions {
  /** The htpasswd file of the users who may log in (created when missing, as htpasswd's). */
  users: string;
  /** PEM private key that signs tokens (EC, RSA or Ed25519); an EC P-256 key is generated when absent. */
  key: string;
  /** Lifetime of an access token. */
  expirationMs: number;
  /** Lifetime of a refresh token (docker login keeps one instead of the password). */
  refreshExpirationMs: number;
}

/** `auth.token`: bearer tokens as the Docker token specification describes them. */
export interface TokenOptions {
  realm: string;
  service: string;
  issuer: string;
  /** PEM certificates whose keys (or chains, in `x5c`) are trusted to sign tokens. */
  rootCertBundle: string | undefined;
  /** A JSON Web Key Set file of trusted signing keys. */
  jwks: string | undefined;
  /** Build the realm from the request's scheme and host and `autoRedirectPath`. */
  autoRedirect: boolean;
  autoRedirectPath: string;
  /** The JWS algorithms accepted; never `none`. */
  signingAlgorithms: string[];
  issue: IssueOptions | undefined;
}

/** A set of users and groups and what they may do. */
export interface Policy {
  users: string[];
  groups: string[];
  actions: Action[];
}

/** The rules of one repository pattern. */
export interface RepositoryPolicy {
  policies: Policy[];
  /** What every authenticated user may do. */
  defaultPolicy: Action[];
  /** What anyone, without credentials, may do. */
  anonymousPolicy: Action[];
}

/** `auth.accesscontrol`: who may do what, per repository pattern (`team-a/**`, `public/*`). */
export interface AccessControlOptions {
  /** Group name → its users. */
  groups: Record<string, string[]>;
  /** Repository pattern → its rules; the most specific matching pattern decides. */
  repositories: Record<string, RepositoryPolicy>;
  /** Users and groups with these actions on every repository. */
  adminPolicy: Policy;
}

/** `auth.throttle`: failed logins per user and per address before 429s. */
export interface ThrottleOptions {
  /** Failed logins allowed per user in a window (four times as many per address); 0: no limit. */
  attempts: number;
  windowMs: number;
}

/** The auth configuration: one of htpasswd and token, with optional rules and throttling. */
export interface AuthOptions {
  htpasswd?: HtpasswdOptions;
  token?: TokenOptions;
  accessControl?: AccessControlOptions;
  throttle: ThrottleOptions;
}

/** The logger auth reports to: pino's shape. */
export interface AuthLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export const DEFAULT_THROTTLE: ThrottleOptions = { attempts: 10, windowMs: 60_000 };
