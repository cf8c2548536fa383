// The auth section of config.yml: distribution's `htpasswd` (realm, path) and `token` (realm,
// service, issuer, rootcertbundle, jwks, autoredirect, autoredirectpath, signingalgorithms), and
// Berth's own keys: `token.issue` (the built-in token service), `accesscontrol` (rules per
// repository pattern, zot's shape; its keys in any case, `defaultPolicy` as zot writes it) and
// `throttle` (failed logins).

import type { Action } from "../api/index.js";
import {
  DEFAULT_ALGORITHMS,
  DEFAULT_THROTTLE,
  type AccessControlOptions,
  type AuthOptions,
  type IssueOptions,
  type Policy,
  type RepositoryPolicy,
  type TokenOptions,
} from "../auth/index.js";
import { isMapping, type ConfigReader, type Mapping } from "./reader.js";

const ACTIONS = ["pull", "push", "delete"] as const;

/** A required string at `key`. */
function required(reader: ConfigReader, section: Mapping, name: string, key: string): string {
  const value = reader.string(section[name], `${key}.${name}`);
  if (value === undefined || value === "") {
    reader.fail(`${key}.${name}`, "is required");
    return "";
  }
  return value;
}

/** The same mapping with its keys in lower case (zot writes accessControl's keys in camelCase). */
function lowerKeys(mapping: Mapping): Mapping {
  return Object.fromEntries(Object.entries(mapping).map(([k, v]) => [k.toLowerCase(), v]));
}

function readActions(reader: ConfigReader, value: unknown, key: string): Action[] {
  const actions = new Set<Action>();
  for (const action of reader.stringList(value, key)) {
    if (action === "*") ACTIONS.forEach((each) => actions.add(each));
    else if ((ACTIONS as readonly string[]).includes(action)) actions.add(action as Action);
    else reader.fail(key, `unknown action ${JSON.stringify(action)}: use pull, push, delete or *`);
  }
  return [...actions];
}

function readPolicy(reader: ConfigReader, value: unknown, key: string): Policy {
  const policy = lowerKeys(reader.mapping(value, key));
  reader.unknownKeys(policy, key, ["users", "groups", "actions"]);
  return {
    users: reader.stringList(policy.users, `${key}.users`),
    groups: reader.stringList(policy.groups, `${key}.groups`),
    actions: readActions(reader, policy.actions, `${key}.actions`),
  };
}

function readRepositoryPolicy(reader: ConfigReader, value: unknown, key: string): RepositoryPolicy {
  const section = lowerKeys(reader.mapping(value, key));
  reader.unknownKeys(section, key, ["policies", "defaultpolicy", "anonymouspolicy"]);
  const policies: Policy[] = [];
  if (section.policies !== undefined && section.policies !== null) {
    if (!Array.isArray(section.policies)) reader.fail(`${key}.policies`, "must be a list");
    else {
      section.policies.forEach((entry, index) =>
        policies.push(readPolicy(reader, entry, `${key}.policies[${index}]`)),
      );
    }
  }
  return {
    policies,
    defaultPolicy: readActions(reader, section.defaultpolicy, `${key}.defaultpolicy`),
    anonymousPolicy: readActions(reader, section.anonymouspolicy, `${key}.anonymouspolicy`),
  };
}

function readAccessControl(reader: ConfigReader, value: unknown): AccessControlOptions {
  const key = "auth.accesscontrol";
  const section = lowerKeys(reader.mapping(value, key));
  reader.unknownKeys(section, key, ["groups", "repositories", "adminpolicy"]);
  const groups: Record<string, string[]> = {};
  for (const [name, entry] of Object.entries(reader.mapping(section.groups, `${key}.groups`))) {
    // zot writes `groups: {team: {users: [...]}}`; a plain list is accepted too.
    const users = isMapping(entry) ? lowerKeys(entry).users : entry;
    groups[name] = reader.stringList(users, `${key}.groups.${name}`);
  }
  const repositories: Record<string, RepositoryPolicy> = {};
  const patterns = reader.mapping(section.repositories, `${key}.repositories`);
  for (const [pattern, entry] of Object.entries(patterns)) {
    repositories[pattern] = readRepositoryPolicy(reader, entry, `${key}.repositories.${pattern}`);
  }
  return {
    groups,
    repositories,
    adminPolicy: readPolicy(reader, section.adminpolicy, `${key}.adminpolicy`),
  };
}

function readIssue(reader: ConfigReader, value: unknown): IssueOptions {
  const key = "auth.token.issue";
  const section = reader.mapping(value, key);
  reader.unknownKeys(section, key, ["users", "key", "expiration", "refreshexpiration"]);
  return {
    users: required(reader, section, "users", key),
    key: required(reader, section, "key", key),
    expirationMs: reader.duration(section.expiration, `${key}.expiration`, 15 * 60_000),
    refreshExpirationMs: reader.duration(
      section.refreshexpiration,
      `${key}.refreshexpiration`,
      30 * 24 * 3_600_000,
    ),
  };
}

function readToken(reader: ConfigReader, value: unknown): TokenOptions {
  const key = "auth.token";
  const section = reader.mapping(value, key);
  reader.unknownKeys(
    section,
    key,
    [
      "realm",
      "service",
      "issuer",
      "rootcertbundle",
      "jwks",
      "autoredirect",
      "autoredirectpath",
      "signingalgorithms",
      "issue",
    ],
    ["rootcertbundle", "jwks", "issuer", "service", "signingalgorithms", "issue", "realm"],
  );
  const algorithms = reader.stringList(section.signingalgorithms, `${key}.signingalgorithms`);
  for (const algorithm of algorithms) {
    if (!DEFAULT_ALGORITHMS.includes(algorithm)) {
      reader.fail(
        `${key}.signingalgorithms`,
        `${JSON.stringify(algorithm)} is not accepted: use ${DEFAULT_ALGORITHMS.join(", ")}`,
      );
    }
  }
  const options: TokenOptions = {
    realm: required(reader, section, "realm", key),
    service: required(reader, section, "service", key),
    issuer: required(reader, section, "issuer", key),
    rootCertBundle: reader.string(section.rootcertbundle, `${key}.rootcertbundle`) || undefined,
    jwks: reader.string(section.jwks, `${key}.jwks`) || undefined,
    autoRedirect: reader.boolean(section.autoredirect, `${key}.autoredirect`, false),
    autoRedirectPath:
      reader.string(section.autoredirectpath, `${key}.autoredirectpath`) || "/auth/token",
    signingAlgorithms: algorithms.length > 0 ? algorithms : DEFAULT_ALGORITHMS,
    issue: section.issue === undefined ? undefined : readIssue(reader, section.issue),
  };
  if (options.rootCertBundle === undefined && options.jwks === undefined && !options.issue) {
    reader.fail(key, "needs rootcertbundle, jwks or issue: no key could verify a token");
  }
  if (options.issue !== undefined && !options.autoRedirect && options.realm !== "") {
    if (!URL.canParse(options.realm)) {
      reader.fail(`${key}.realm`, `must be the token endpoint's URL, got ${options.realm}`);
    }
  }
  return options;
}

/** The auth section; undefined when there is none (every request allowed). */
export function readAuth(reader: ConfigReader, tree: Mapping): AuthOptions | undefined {
  if (tree.auth === undefined || tree.auth === null) return undefined;
  const auth = reader.mapping(tree.auth, "auth");
  reader.unknownKeys(
    auth,
    "auth",
    ["htpasswd", "token", "accesscontrol", "throttle", "silly", "none"],
    ["htpasswd", "token", "accesscontrol"],
  );
  for (const unsupported of ["silly", "none"]) {
    if (auth[unsupported] !== undefined) {
      reader.fail(`auth.${unsupported}`, "not supported by Berth: use htpasswd or token");
    }
  }
  const modes = ["htpasswd", "token"].filter((mode) => auth[mode] !== undefined);
  if (modes.length !== 1) {
    reader.fail("auth", "must configure exactly one of htpasswd and token");
    return undefined;
  }
  const options: AuthOptions = { throttle: { ...DEFAULT_THROTTLE } };
  if (auth.htpasswd !== undefined) {
    const section = reader.mapping(auth.htpasswd, "auth.htpasswd");
    reader.unknownKeys(section, "auth.htpasswd", ["realm", "path"]);
    options.htpasswd = {
      realm: required(reader, section, "realm", "auth.htpasswd"),
      path: required(reader, section, "path", "auth.htpasswd"),
    };
  } else {
    options.token = readToken(reader, auth.token);
  }
  if (auth.accesscontrol !== undefined) {
    options.accessControl = readAccessControl(reader, auth.accesscontrol);
  }
  const throttle = reader.mapping(auth.throttle, "auth.throttle");
  reader.unknownKeys(throttle, "auth.throttle", ["attempts", "window"]);
  options.throttle = {
    attempts: reader.integer(
      throttle.attempts,
      "auth.throttle.attempts",
      DEFAULT_THROTTLE.attempts,
    ),
    windowMs: reader.duration(throttle.window, "auth.throttle.window", DEFAULT_THROTTLE.windowMs),
  };
  return options;
}
