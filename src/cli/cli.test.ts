import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { startRegistry } from "../server/index.js";
import { buildImage, content, type Content } from "../testing/images.js";

const main = fileURLToPath(new URL("./main.js", import.meta.url));

/** A running `berth` process and what it has printed so far. */
interface BerthProcess {
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

function runBerth(args: string[], env: Record<string, string> = {}): BerthProcess {
  const child = spawn(process.execPath, [main, ...args], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on("close", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return {
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    kill: (signal) => child.kill(signal),
  };
}

async function withTempDir(fn: (directory: string) => Promise<void>): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), "berth-cli-"));
  try {
    await fn(directory);
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/** Pushes one blob with a monolithic upload. */
async function pushBlob(url: string, name: string, blob: Content): Promise<void> {
  const started = await fetch(`${url}/v2/${name}/blobs/uploads/`, { method: "POST" });
  const location = new URL(started.headers.get("location")!, url);
  location.searchParams.set("digest", blob.digest);
  const finished = await fetch(location, { method: "PUT", body: blob.bytes });
  assert.equal(finished.status, 201, await finished.text());
}

describe("berth", () => {
  it("prints its version and help", async () => {
    const version = runBerth(["--version"]);
    assert.equal(await version.exited, 0);
    assert.match(version.stdout(), /^\d+\.\d+\.\d+\n$/);
    const help = runBerth(["--help"]);
    assert.equal(await help.exited, 0);
    assert.match(help.stdout(), /serve \[config\]/);
    assert.match(help.stdout(), /garbage-collect/);
  });

  it("runs with the node flags and allocator settings of its first line, which npm start passes too", async () => {
    const first = (await readFile(main, "utf8")).split("\n", 1)[0]!;
    const match = /^#!\/usr\/bin\/env -S((?: [A-Z_]+=\S+)*) node((?: --[a-z-]+(?:=\S+)?)*)$/.exec(
      first,
    );
    assert.ok(match, `unexpected first line: ${first}`);
    const settings = match[1]!.trim().split(" ");
    const flags = match[2]!.trim().split(" ");
    for (const flag of ["--initial-old-space-size=64", "--max-semi-space-size=4", "--expose-gc"]) {
      assert.ok(flags.includes(flag), first);
    }
    for (const setting of ["MALLOC_MMAP_THRESHOLD_=262144", "MALLOC_TRIM_THRESHOLD_=134217728"]) {
      assert.ok(settings.includes(setting), first);
    }
    const manifest = JSON.parse(
      await readFile(new URL("../../../package.json", import.meta.url), "utf8"),
    ) as { scripts: Record<string, string> };
    assert.ok(
      manifest.scripts.start!.endsWith(
        `${settings.join(" ")} node ${flags.join(" ")} dist/src/cli/main.js serve`,
      ),
      manifest.scripts.start,
    );
    // The line as the kernel runs it: env splits it, node accepts the flags.
    const child = spawn(
      "/usr/bin/env",
      ["-S", first.slice("#!/usr/bin/env -S ".length), main, "--version"],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise((resolve) => child.on("close", resolve));
    assert.equal(code, 0);
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
  });

  it("serve: serves a config, answers /v2/, and exits 0 on SIGTERM", async () => {
    await withTempDir(async (directory) => {
      const config = join(directory, "config.yml");
      await writeFile(
        config,
        `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${join(directory, "data")}\nhttp:\n  addr: 127.0.0.1:0\n`,
      );
      const berth = runBerth(["serve", config], { REGISTRY_LOG_LEVEL: "warn" });
      // Until it prints its URL or exits: a start-up on a loaded machine can take many seconds (the
      // bound only stops a hung process from hanging the suite).
      let exited = false;
      void berth.exited.then(() => (exited = true));
      let url: string | undefined;
      for (const deadline = Date.now() + 120_000; !exited && Date.now() < deadline;) {
        url = /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(berth.stdout())?.[1];
        if (url !== undefined) break;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      if (url === undefined) berth.kill("SIGKILL");
      assert.ok(url, `no URL printed; stderr: ${berth.stderr()}`);
      const response = await fetch(`${url}/v2/`);
      assert.equal(response.status, 200);
      berth.kill("SIGTERM");
      assert.equal(await berth.exited, 0, berth.stderr());
      assert.match(berth.stderr(), /SIGTERM: stopping/);
    });
  });

  it("serve: a bad config exits non-zero naming the key", async () => {
    await withTempDir(async (directory) => {
      const config = join(directory, "config.yml");
      await writeFile(config, "version: 0.1\nstorage: inmemory\nhttp:\n  addr: nope\n");
      const berth = runBerth(["serve", config]);
      assert.equal(await berth.exited, 2);
      assert.match(berth.stderr(), /http\.addr: "nope" is not host:port/);
      const overridden = runBerth(["serve", config], {
        REGISTRY_HTTP_ADDR: "127.0.0.1:0",
        REGISTRY_LOG_LEVEL: "loud",
      });
      assert.equal(await overridden.exited, 2);
      assert.match(overridden.stderr(), /log\.level \(REGISTRY_LOG_LEVEL\): must be one of/);
      const missing = runBerth(["serve", join(directory, "missing.yml")]);
      assert.equal(await missing.exited, 2);
      assert.match(missing.stderr(), /missing\.yml: cannot read the config file/);
    });
  });

  it("garbage-collect: lists unreferenced blobs on a dry run, deletes them otherwise", async () => {
    await withTempDir(async (directory) => {
      const root = join(directory, "data");
      const image = buildImage({ layers: 2, layerSize: 512 });
      const orphan = content("application/octet-stream", Buffer.from("nobody refers to me"));
      const registry = await startRegistry({
        driver: "filesystem",
        parameters: { rootdirectory: root },
      });
      try {
        for (const blob of [...image.layers, image.config, orphan])
          await pushBlob(registry.url, "app", blob);
        const put = await fetch(`${registry.url}/v2/app/manifests/v1`, {
          method: "PUT",
          headers: { "content-type": image.manifest.mediaType },
          body: image.manifest.bytes,
        });
        assert.equal(put.status, 201, await put.text());
      } finally {
        await registry.close();
      }
      const config = join(directory, "config.yml");
      await writeFile(
        config,
        `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n`,
      );
      const hex = orphan.digest.slice("sha256:".length);
      const orphanData = join(
        root,
        "docker/registry/v2/blobs/sha256",
        hex.slice(0, 2),
        hex,
        "data",
      );

      // Everything was just pushed: with the default delay (1h) nothing is old enough.
      const young = runBerth(["garbage-collect", config]);
      assert.equal(await young.exited, 0, young.stderr());
      assert.match(young.stdout(), /0 blobs and 0 manifests deleted, 0 bytes freed/);
      await access(orphanData);

      const dryRun = runBerth(["garbage-collect", config, "--dry-run", "--delay", "0s"]);
      assert.equal(await dryRun.exited, 0, dryRun.stderr());
      // Not a terminal: progress as plain lines on stderr.
      assert.match(dryRun.stderr(), /progress: marking, 1 repositories/);
      assert.match(dryRun.stderr(), /progress: sweeping, 1 repositories, 5 blobs seen/);
      assert.match(dryRun.stdout(), new RegExp(`blob eligible for deletion: ${orphan.digest}`));
      assert.match(dryRun.stdout(), new RegExp(`app: marking manifest ${image.manifest.digest}`));
      assert.match(
        dryRun.stdout(),
        /4 blobs marked, 1 blobs and 0 manifests eligible for deletion/,
      );
      assert.equal(dryRun.stdout().match(/blobs marked/g)?.length, 1, "the summary, once");
      await access(orphanData);

      // Another collector (a serving replica) holds the lease: refused, nothing deleted.
      const lease = join(root, "berth/gc/lease");
      await mkdir(dirname(lease), { recursive: true });
      await writeFile(lease, JSON.stringify({ owner: "replica", id: "abc", ttlMs: 600_000 }));
      const held = runBerth(["garbage-collect", config, "--delay", "0s"]);
      assert.equal(await held.exited, 1, held.stdout());
      assert.match(held.stderr(), /another garbage collector holds the lease/);
      await access(orphanData);
      await rm(lease);

      const collect = runBerth(["garbage-collect", config, "--delay", "0s"]);
      assert.equal(await collect.exited, 0, collect.stderr());
      assert.match(collect.stdout(), /1 blobs and 0 manifests deleted, 19 bytes freed/);
      assert.equal(collect.stdout().match(/blobs marked/g)?.length, 1, "the summary, once");
      await assert.rejects(access(orphanData));
      await assert.rejects(access(lease), "the lease was given up");
    });
  });

  it("garbage-collect: a missing root fails naming it (exit 1) and creates nothing", async () => {
    await withTempDir(async (directory) => {
      const root = join(directory, "misspelt", "data");
      const config = join(directory, "config.yml");
      await writeFile(
        config,
        `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${root}\n`,
      );
      const collect = runBerth(["garbage-collect", config]);
      assert.equal(await collect.exited, 1, collect.stdout());
      assert.ok(collect.stderr().includes(root), collect.stderr());
      assert.doesNotMatch(collect.stdout(), /blobs marked/);
      await assert.rejects(access(join(directory, "misspelt")));
    });
  });
});
