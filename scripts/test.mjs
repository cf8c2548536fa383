// `npm test`: type-check and build with tsc into a fresh dist/ (build.mjs), then run every compiled
// test file with node:test.
// Test files are `*.test.ts` beside the code they test, in src/ and bench/; tsc puts them under dist/.
// Extra arguments are passed to `node --test` (for example a single file or --test-name-pattern).
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { build } from "./build.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const status = build();
if (status !== 0) process.exit(status);

const args = process.argv.slice(2);
const targets = args.length > 0 ? args : [join(root, "dist", "src"), join(root, "dist", "bench")];
const run = spawnSync(
  process.execPath,
  ["--test", "--test-concurrency=2", "--test-reporter=spec", ...targets],
  { stdio: "inherit", cwd: root },
);
process.exit(run.status ?? 1);
