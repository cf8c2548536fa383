import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const BENCH = fileURLToPath(new URL("./main.js", import.meta.url));

describe("npm run bench", () => {
  it("stops the registries it started when its reader goes away (`| head`), not leaving them serving", async () => {
    const bench = spawn(
      process.execPath,
      [
        BENCH,
        "--only",
        "v2-check",
        "--no-distribution",
        "--load-seconds",
        "1",
        "--repetitions",
        "1",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const exited = once(bench, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
    let output = "";
    const url = await new Promise<string>((resolve, reject) => {
      bench.stderr.setEncoding("utf8").on("data", (text: string) => {
        output += text;
        const match = /Berth at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
        if (match !== null) resolve(match[1]!);
      });
      void exited.then(() =>
        reject(new Error(`the bench ended before starting Berth:\n${output}`)),
      );
    });
    assert.equal((await fetch(`${url}/v2/`)).status, 200);
    // As `| head` does once it has its lines: the reader closes, and the next write fails.
    bench.stdout.destroy();
    bench.stderr.destroy();
    const [code] = await exited;
    assert.equal(code, 141);
    await assert.rejects(fetch(`${url}/v2/`), "Berth still answers after the bench ended");
  });
});
