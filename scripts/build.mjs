// `npm run build`: type-check and compile with tsc into a dist/ emptied first, so that a file whose
// source was moved or removed outlives it neither as a test that still runs nor as a module that
// still ships (tsc builds everything each time anyway: the project is not incremental). Then the
// web UI (src/ui/app): type-checked with its own tsconfig (DOM, Preact's JSX) and bundled by
// esbuild into dist/ui: index.html and content-hashed assets (app-<hash>.js, app-<hash>.css),
// which src/ui serves with long cache lifetimes. Nothing is fetched at run time.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const tsc = join(root, "node_modules", ".bin", "tsc");

/** Bundles the web UI into `out` (dist/ui); returns 0, or 1 after printing esbuild's errors. */
export function buildUi(out = join(root, "dist", "ui")) {
  const app = join(root, "src", "ui", "app");
  const check = spawnSync(tsc, ["-p", join(app, "tsconfig.json")], { stdio: "inherit" });
  if (check.status !== 0) return check.status ?? 1;
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "assets"), { recursive: true });
  let result;
  try {
    result = esbuild.buildSync({
      entryPoints: [join(app, "main.tsx")],
      bundle: true,
      minify: true,
      format: "esm",
      target: ["es2020", "chrome100", "firefox100", "safari15"],
      jsx: "automatic",
      jsxImportSource: "preact",
      outdir: join(out, "assets"),
      entryNames: "app-[hash]",
      assetNames: "[name]-[hash]",
      metafile: true,
      legalComments: "none",
      logLevel: "warning",
    });
  } catch {
    return 1;
  }
  const outputs = Object.keys(result.metafile.outputs).map((path) => basename(path));
  const script = outputs.find((name) => name.endsWith(".js"));
  const style = outputs.find((name) => name.endsWith(".css"));
  const html = readFileSync(join(app, "index.html"), "utf8")
    .replace("%SCRIPT%", `assets/${script}`)
    .replace("%STYLE%", `assets/${style}`);
  writeFileSync(join(out, "index.html"), html);
  return 0;
}

/** Rebuilds dist/; returns tsc's exit status (or the UI build's). */
export function build() {
  rmSync(join(root, "dist"), { recursive: true, force: true });
  const compiled = spawnSync(tsc, ["-p", join(root, "tsconfig.json")], { stdio: "inherit" });
  if (compiled.status !== 0) return compiled.status ?? 1;
  return buildUi();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exit(build());
