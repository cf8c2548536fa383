// `npm run crash`: the long version of the crash test (src/cli/crash.test.ts). Many rounds of
// concurrent pushes of mixed sizes and kinds against a real `berth serve`, each round stopped with
// kill -9 (or --signal) at a delay cycled from --delays, restarted and checked by
// src/testing/crash.ts: every 201 present with its digest, every upload at what its last 202
// acknowledged, no driver file left after start-up, every cut upload resumable. Afterwards
// distribution 2.8.2 (Debian's docker-registry) serves the root: its catalog lists what Berth
// committed. Prints the counts; exits 1 on any failure.

import { Command, InvalidArgumentError } from "commander";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crashRounds } from "../src/testing/crash.js";
import { startDockerRegistry } from "../src/testing/docker-registry.js";
import { hasCommand } from "../src/testing/tools.js";

interface Options {
  rounds: number;
  pushes: number;
  maxSize: number;
  signal: NodeJS.Signals;
  delays: number[];
}

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1)
    throw new InvalidArgumentError(`not a positive integer: ${value}`);
  return parsed;
}

function delays(value: string): number[] {
  const parsed = value.split(",").map(Number);
  if (parsed.some((ms) => !Number.isInteger(ms) || ms < 0))
    throw new InvalidArgumentError(`not a list of milliseconds: ${value}`);
  return parsed;
}

const options = new Command()
  .name("npm run crash --")
  .description("kill -9 rounds of concurrent pushes against berth serve")
  .option("--rounds <n>", "crash rounds", positiveInteger, 20)
  .option("--pushes <n>", "concurrent pushes per round", positiveInteger, 30)
  .option("--max-size <bytes>", "largest blob", positiveInteger, 8 * 1024 * 1024)
  .option("--signal <name>", "how Berth is stopped each round", "SIGKILL")
  .option("--delays <ms,...>", "stop after these delays (cycled)", delays, [300, 800, 1500, 3000])
  .parse()
  .opts<Options>();

const dir = await mkdtemp(join(tmpdir(), "berth-crash-loop-"));
const root = join(dir, "root");
const started = Date.now();
let failed = false;
try {
  const counts = await crashRounds({ root, configDir: dir, ...options });
  const seconds = ((Date.now() - started) / 1000).toFixed(0);
  process.stdout.write(
    `${options.rounds} rounds of ${options.pushes} pushes, ${options.signal}, ${seconds} s\n` +
      `${JSON.stringify({ ...counts, failures: counts.failures.length }, null, 2)}\n`,
  );
  for (const failure of counts.failures.slice(0, 20)) process.stdout.write(`FAILED: ${failure}\n`);
  failed = counts.failures.length > 0 || counts.sidecarsLeft > 0;
  if (hasCommand("docker-registry")) {
    const distribution = await startDockerRegistry(root);
    try {
      const response = await fetch(`${distribution.url}/v2/_catalog?n=1000`);
      const body = await response.text();
      if (response.status === 200) {
        const { repositories } = JSON.parse(body) as { repositories: string[] };
        process.stdout.write(`distribution 2.8.2 serves the root: ${repositories.length} repositories in its catalog\n`); // prettier-ignore
      } else {
        process.stdout.write(`FAILED: distribution's catalog: ${response.status} ${body}\n`);
        failed = true;
      }
    } finally {
      await distribution.stop();
    }
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
