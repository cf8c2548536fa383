// The health endpoint, `/debug/health` as in distribution: 200 with `{}` when the storage driver
// answers, 503 with `{"storagedriver_<name>": "<what failed>"}` when it does not. What failed is a
// fixed phrase: the error itself (paths, OS messages, backend URLs) goes to the log, never to the
// unauthenticated client. Concurrent checks share one driver call, and a driver that does not
// answer within the timeout counts as failing.

import type { ServerResponse } from "node:http";
import type { Logger } from "pino";
import type { RegistryStorage } from "../storage/index.js";
import type { PeriodicChecks } from "./health-checks.js";

/** The path distribution serves its health status on. */
export const healthPath = "/debug/health";

const checkTimeoutMs = 10_000;

/** Answers health requests for one storage layer. */
export class HealthCheck {
  private running: Promise<string | undefined> | undefined;

  constructor(
    private readonly storage: RegistryStorage,
    private readonly driverName: string,
    private readonly logger?: Pick<Logger, "error">,
    /**
     * The checks of config.yml's `health` section; with `health.storagedriver.enabled` the driver
     * is checked there, periodically, and not on each request.
     */
    private readonly periodic?: { checks: PeriodicChecks; storageDriver: boolean },
  ) {}

  /** Undefined when healthy, else what failed. */
  check(): Promise<string | undefined> {
    this.running ??= this.runCheck().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async runCheck(): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => {
        this.logger?.error(
          `health check: no answer from the storage driver within ${checkTimeoutMs / 1000}s`,
        );
        resolve("storage driver unavailable");
      }, checkTimeoutMs);
    });
    try {
      const healthy = this.storage.checkHealth().then(
        () => undefined,
        (error: unknown) => {
          this.logger?.error({ err: error }, "health check: storage driver failed");
          return "storage driver unavailable";
        },
      );
      return await Promise.race([healthy, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Writes the health status as the response to a GET or HEAD. */
  async respond(method: string | undefined, res: ServerResponse): Promise<void> {
    if (method !== "GET" && method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-length": 0 }).end();
      return;
    }
    const failure = this.periodic?.storageDriver ? undefined : await this.check();
    const failing: Record<string, string> = {};
    if (failure !== undefined) failing[`storagedriver_${this.driverName}`] = failure;
    for (const [name, phrase] of this.periodic?.checks.failing ?? []) failing[name] = phrase;
    const healthy = Object.keys(failing).length === 0;
    const body = JSON.stringify(failing);
    res.writeHead(healthy ? 200 : 503, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      "cache-control": "no-cache",
    });
    res.end(method === "HEAD" ? undefined : body);
  }
}
