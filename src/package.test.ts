// The npm package carries the product and nothing else: every entry point package.json names is in
// the tarball, and no test, bench or test-support file is (the shared driver suite, a public
// export, is the one module allowed to use node:test). The tarball is listed from the dist/ that
// `npm test` has just built, so every test file is there to be left out.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

interface PackageJson {
  main: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, { types: string; default: string }>;
  scripts: Record<string, string>;
}

/** The paths `npm pack` would put in the tarball. */
async function packedFiles(): Promise<string[]> {
  // --ignore-scripts: `prepare` would rebuild dist/ under the tests that are running from it.
  const { stdout } = await promisify(execFile)(
    "npm",
    ["pack", "--dry-run", "--json", "--ignore-scripts"],
    { cwd: root, maxBuffer: 16 * 1024 * 1024 },
  );
  const [pack] = JSON.parse(stdout) as [{ files: { path: string }[] }];
  return pack.files.map((file) => file.path);
}

describe("npm package", () => {
  it("holds every entry point and no test, bench, test-support or source-map file", async () => {
    const files = await packedFiles();
    const manifest = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as PackageJson;
    const entryPoints = [
      manifest.main,
      manifest.types,
      ...Object.values(manifest.bin),
      ...Object.values(manifest.exports).flatMap((entry) => [entry.types, entry.default]),
    ].map((path) => path.replace(/^\.\//, ""));
    for (const path of entryPoints) assert.ok(files.includes(path), `${path} is not packed`);
    assert.ok(files.includes("README.md"));
    // Installing the package runs nothing (the build is prepack's, before the tarball is made).
    for (const hook of ["preinstall", "install", "postinstall", "prepare"]) {
      assert.equal(manifest.scripts[hook], undefined, `an install script: ${hook}`);
    }
    // The web UI, bundled at build time: index.html and its content-hashed assets.
    assert.ok(files.includes("dist/ui/index.html"), "dist/ui/index.html is not packed");
    assert.ok(
      files.some((path) => /^dist\/ui\/assets\/app-[A-Z0-9]+\.js$/.test(path)),
      "the UI's script is not packed",
    );
    // The out-of-process driver protocol's service definition, loaded at run time.
    assert.ok(files.includes("proto/berth-driver.proto"), "proto/berth-driver.proto is not packed");

    const unwanted = files.filter(
      (path) =>
        /\.test\.|\.map$/.test(path) ||
        path.startsWith("dist/bench/") ||
        path.startsWith("dist/src/testing/") ||
        path.startsWith("src/") ||
        path.startsWith("bench/") ||
        path.startsWith("scripts/"),
    );
    assert.deepEqual(unwanted, []);
    assert.ok(
      files.every(
        (path) =>
          path === "README.md" ||
          path === "package.json" ||
          path === "proto/berth-driver.proto" ||
          path === "dist/ui/index.html" ||
          path.startsWith("dist/ui/assets/") ||
          path.startsWith("dist/src/"),
      ),
      files.join("\n"),
    );
  });

  it("ships no module that loads test support; only the driver suite uses node:test", async () => {
    const modules = (await packedFiles()).filter((path) => path.endsWith(".js"));
    const offenders: string[] = [];
    for (const path of modules) {
      const text = await readFile(join(root, path), "utf8");
      const suite = path.startsWith("dist/src/driver/testsuite/");
      if (/from "[^"]*\/testing\/[^"]*"/.test(text) || (!suite && /from "node:test"/.test(text)))
        offenders.push(path);
    }
    assert.ok(modules.length > 50, `only ${modules.length} modules packed`);
    assert.deepEqual(offenders, []);
  });
});
