// The periodic checks of config.yml's `health` section, as distribution runs them: each on its own
// interval (the first after one interval), failing `threshold` times in a row (once when 0) before
// it counts. /debug/health reports each failing check by name with a fixed phrase; what exactly
// failed (paths, OS errors, URLs with credentials) goes to the log only.
//
// Names: `storagedriver_<driver>` as distribution's; a file check by the file's base name
// (`file_<name>`, not its absolute path), an HTTP check by the URI's origin and path (no
// credentials or query), a TCP check by its address.

import { access } from "node:fs/promises";
import { connect } from "node:net";
import { basename } from "node:path";
import type { Logger } from "pino";
import type { HealthConfig } from "../config/index.js";
import type { HealthProbe } from "../storage/index.js";

/** One periodic check. */
interface Check {
  name: string;
  intervalMs: number;
  threshold: number;
  /** Resolves when healthy; rejects with what failed, in a phrase fit for clients. */
  run(): Promise<void>;
}

class CheckFailure extends Error {}

/** Runs the configured checks and keeps their statuses. */
export class PeriodicChecks {
  /** Failing checks: name → phrase. */
  readonly failing = new Map<string, string>();
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Set<Promise<void>>();

  constructor(
    checks: Check[],
    private readonly logger: Logger,
  ) {
    for (const check of checks) {
      let failures = 0;
      let busy = false;
      const tick = (): void => {
        if (busy) return;
        busy = true;
        const run = check
          .run()
          .then(
            () => {
              failures = 0;
              this.failing.delete(check.name);
            },
            (error: unknown) => {
              failures++;
              this.logger.error({ err: error, check: check.name }, "health check failed");
              if (failures >= Math.max(1, check.threshold)) {
                this.failing.set(
                  check.name,
                  error instanceof CheckFailure ? error.message : "check failed",
                );
              }
            },
          )
          .finally(() => {
            busy = false;
            this.running.delete(run);
          });
        this.running.add(run);
      };
      const timer = setInterval(tick, check.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  /** Stops the checks and waits for those under way. */
  async stop(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    await Promise.all(this.running);
  }
}

function withTimeout<T>(operation: (signal: AbortSignal) => Promise<T>, ms: number): Promise<T> {
  const signal = AbortSignal.timeout(ms);
  return operation(signal).catch((error: unknown) => {
    if (signal.aborted) throw new CheckFailure(`no answer within ${ms / 1000}s`, { cause: error });
    throw error;
  });
}

function httpName(uri: string): string {
  const url = new URL(uri);
  return `${url.origin}${url.pathname}`;
}

/** The checks `config` asks for; `probe` checks the storage driver. */
export function healthChecks(
  config: HealthConfig,
  driverName: string,
  probe: HealthProbe,
): Check[] {
  const checks: Check[] = [];
  const { storageDriver } = config;
  if (storageDriver.enabled) {
    checks.push({
      name: `storagedriver_${driverName}`,
      intervalMs: storageDriver.intervalMs,
      threshold: storageDriver.threshold,
      run: async () => {
        try {
          await probe.check();
        } catch (error) {
          // HealthProbeError's message is a fixed phrase; its cause has the detail.
          throw new CheckFailure((error as Error).message, { cause: error });
        }
      },
    });
  }
  for (const file of config.file) {
    checks.push({
      name: `file_${basename(file.file)}`,
      intervalMs: file.intervalMs,
      threshold: 0,
      run: async () => {
        const exists = await access(file.file).then(
          () => true,
          () => false,
        );
        if (exists) throw new CheckFailure("file exists");
      },
    });
  }
  for (const http of config.http) {
    checks.push({
      name: httpName(http.uri),
      intervalMs: http.intervalMs,
      threshold: http.threshold,
      run: async () => {
        const headers = new Headers();
        for (const [name, values] of Object.entries(http.headers)) {
          for (const value of values) headers.append(name, value);
        }
        // fetch refuses credentials in a URL; Go's client sends them as basic auth, so do we.
        const url = new URL(http.uri);
        if (url.username !== "" && !headers.has("authorization")) {
          const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
          headers.set("authorization", `Basic ${Buffer.from(user).toString("base64")}`);
        }
        url.username = "";
        url.password = "";
        const response = await withTimeout(
          (signal) => fetch(url, { method: "HEAD", headers, signal, redirect: "manual" }),
          http.timeoutMs,
        ).catch((error: unknown) => {
          if (error instanceof CheckFailure) throw error;
          throw new CheckFailure("connection failed", { cause: error });
        });
        if (response.status !== http.statusCode) {
          throw new CheckFailure(
            `downstream service returned unexpected status: ${response.status}`,
          );
        }
      },
    });
  }
  for (const tcp of config.tcp) {
    checks.push({
      name: tcp.addr,
      intervalMs: tcp.intervalMs,
      threshold: tcp.threshold,
      run: () =>
        new Promise<void>((resolve, reject) => {
          const socket = connect({ host: tcp.hostname, port: tcp.port });
          const timer = setTimeout(() => {
            socket.destroy();
            reject(new CheckFailure(`no answer within ${tcp.timeoutMs / 1000}s`));
          }, tcp.timeoutMs);
          socket.once("connect", () => {
            clearTimeout(timer);
            socket.destroy();
            resolve();
          });
          socket.once("error", (error) => {
            clearTimeout(timer);
            reject(new CheckFailure("connection failed", { cause: error }));
          });
        }),
    });
  }
  return checks;
}
