// Access rules: what a user (or an anonymous caller) may do on a repository. Without rules, as
// distribution's htpasswd mode, any authenticated user may do everything and anonymous callers
// nothing. With `auth.accesscontrol`, the most specific repository pattern that matches decides
// (the longest pattern; `**` crosses slashes, `*` does not), plus the admin policy everywhere.

import type { Action } from "../api/index.js";
import type { AccessControlOptions, Policy, RepositoryPolicy } from "./options.js";

export const ALL_ACTIONS: readonly Action[] = ["pull", "push", "delete"];

/**
 * A repository pattern as a regular expression: `**` any characters, `*` any but `/`, the rest
 * literal; `a/**` also matches `a`. Hand-written: these two wildcards are the whole grammar.
 */
export function patternRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i]!;
    if (char === "*" && pattern[i + 1] === "*") {
      i++;
      if (source.endsWith("/") && i === pattern.length - 1) {
        source = `${source.slice(0, -1)}(?:/.*)?`;
      } else {
        source += ".*";
      }
    } else if (char === "*") {
      source += "[^/]*";
    } else {
      source += char.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
    }
  }
  return new RegExp(`^${source}$`);
}

interface CompiledPattern {
  pattern: string;
  regexp: RegExp;
  policy: RepositoryPolicy;
}

/** The access rules of a config, ready to answer. */
export class AccessRules {
  private readonly patterns: CompiledPattern[];
  private readonly groupsOf = new Map<string, Set<string>>();

  constructor(private readonly options: AccessControlOptions | undefined) {
    this.patterns = Object.entries(options?.repositories ?? {})
      .map(([pattern, policy]) => ({ pattern, regexp: patternRegExp(pattern), policy }))
      // Most specific first: longer patterns, and at equal length fewer wildcards.
      .sort(
        (a, b) =>
          b.pattern.length - a.pattern.length ||
          wildcards(a.pattern) - wildcards(b.pattern) ||
          (a.pattern < b.pattern ? -1 : 1),
      );
    for (const [group, users] of Object.entries(options?.groups ?? {})) {
      for (const user of users) {
        let groups = this.groupsOf.get(user);
        if (groups === undefined) this.groupsOf.set(user, (groups = new Set()));
        groups.add(group);
      }
    }
  }

  /** True when rules are configured (otherwise authentication alone decides). */
  get configured(): boolean {
    return this.options !== undefined;
  }

  /** What `user` (undefined: anonymous) may do on repository `name`. */
  actions(user: string | undefined, name: string): Set<Action> {
    const granted = new Set<Action>();
    if (this.options === undefined) {
      if (user !== undefined) for (const action of ALL_ACTIONS) granted.add(action);
      return granted;
    }
    if (user !== undefined && this.applies(this.options.adminPolicy, user)) {
      addAll(granted, this.options.adminPolicy.actions);
    }
    const match = this.patterns.find((candidate) => candidate.regexp.test(name));
    if (match === undefined) return granted;
    const { policy } = match;
    addAll(granted, policy.anonymousPolicy);
    if (user === undefined) return granted;
    addAll(granted, policy.defaultPolicy);
    for (const entry of policy.policies) {
      if (this.applies(entry, user)) addAll(granted, entry.actions);
    }
    return granted;
  }

  /** True when `user` may do every action on every repository. */
  unrestricted(user: string | undefined): boolean {
    if (this.options === undefined) return user !== undefined;
    if (user === undefined || !this.applies(this.options.adminPolicy, user)) return false;
    return ALL_ACTIONS.every((action) => this.options!.adminPolicy.actions.includes(action));
  }

  private applies(policy: Policy, user: string): boolean {
    if (policy.users.includes(user)) return true;
    const groups = this.groupsOf.get(user);
    return groups !== undefined && policy.groups.some((group) => groups.has(group));
  }
}

function wildcards(pattern: string): number {
  return pattern.split("*").length - 1;
}

function addAll(set: Set<Action>, actions: readonly Action[]): void {
  for (const action of actions) set.add(action);
}
