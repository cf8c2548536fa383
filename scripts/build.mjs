// `npm run build`: type-check and compile with tsc into a dist/ emptied first, so that a file whose
// source was moved or removed outlives it neither as a test that still runs nor as a module that
// still ships (tsc builds everything each time anyway: the project is not incremental).
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Rebuilds dist/; returns tsc's exit status. */
export function build() {
  rmSync(join(root, "dist"), { recursive: true, force: true });
  const tsc = spawnSync(
    join(root, "node_modules", ".bin", "tsc"),
    ["-p", join(root, "tsconfig.json")],
    {
      stdio: "inherit",
    },
  );
  return tsc.status ?? 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exit(build());
