import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AccessRules, patternRegExp } from "./rules.js";

describe("access rules", () => {
  it("matches `**` across slashes, `*` within one component, the rest literally", () => {
    const cases: [string, string, boolean][] = [
      ["team-a/**", "team-a/app", true],
      ["team-a/**", "team-a/x/y", true],
      ["team-a/**", "team-a", true],
      ["team-a/**", "team-ab/app", false],
      ["team-a/*", "team-a/app", true],
      ["team-a/*", "team-a/x/y", false],
      ["**", "any/thing", true],
      ["a.b/*", "axb/c", false],
      ["*/base", "lib/base", true],
      ["*/base", "lib/x/base", false],
      ["lib/**/base", "lib/x/y/base", true],
    ];
    for (const [pattern, name, expected] of cases) {
      assert.equal(patternRegExp(pattern).test(name), expected, `${pattern} ~ ${name}`);
    }
  });

  it("without rules: authenticated users may do everything, anonymous nothing", () => {
    const rules = new AccessRules(undefined);
    assert.deepEqual([...rules.actions("alice", "x")], ["pull", "push", "delete"]);
    assert.deepEqual([...rules.actions(undefined, "x")], []);
    assert.equal(rules.unrestricted("alice"), true);
    assert.equal(rules.unrestricted(undefined), false);
  });

  it("takes the most specific pattern, adds default, anonymous and admin policies", () => {
    const rules = new AccessRules({
      groups: { devs: ["dev1"] },
      repositories: {
        "**": { policies: [], defaultPolicy: ["pull"], anonymousPolicy: [] },
        "team/**": {
          policies: [{ users: [], groups: ["devs"], actions: ["pull", "push"] }],
          defaultPolicy: [],
          anonymousPolicy: [],
        },
        "team/public": { policies: [], defaultPolicy: [], anonymousPolicy: ["pull"] },
      },
      adminPolicy: { users: ["root"], groups: [], actions: ["pull", "push", "delete"] },
    });
    const actions = (user: string | undefined, name: string): string[] => [
      ...rules.actions(user, name),
    ];
    assert.deepEqual(actions("dev1", "team/app"), ["pull", "push"]);
    assert.deepEqual(actions("other", "team/app"), []);
    assert.deepEqual(actions("other", "misc/app"), ["pull"]);
    assert.deepEqual(actions(undefined, "misc/app"), []);
    assert.deepEqual(actions(undefined, "team/public"), ["pull"]);
    assert.deepEqual(actions("dev1", "team/public"), ["pull"]);
    assert.deepEqual(actions("root", "team/app"), ["pull", "push", "delete"]);
    assert.equal(rules.unrestricted("root"), true);
    assert.equal(rules.unrestricted("dev1"), false);
  });
});
