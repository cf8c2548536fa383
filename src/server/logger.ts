// The registry's logger: pino, writing asynchronously (a request never waits for a log write) to
// stderr, as distribution logs. `json` writes pino's JSON lines; `text` writes one `key=value` line
// per entry, in the manner of distribution's text formatter.

import { pino, type DestinationStream, type Logger } from "pino";
import type { LogLevel } from "../config/index.js";

/** A logger Berth created, with what it takes to flush it when the registry stops. */
export interface OwnedLogger {
  logger: Logger;
  /** Writes out what is buffered. */
  flush(): Promise<void>;
}

/** Options of createLogger. */
export interface LoggerOptions {
  level: LogLevel | "silent";
  formatter: "json" | "text";
  /** Added to every entry (config `log.fields`). */
  fields?: Record<string, unknown>;
  /** Where lines go; default stderr, written asynchronously. */
  destination?: DestinationStream;
}

function quote(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

/** Rewrites pino's JSON lines as `time=... level=info msg="..." key=value` lines. */
function textDestination(target: DestinationStream): DestinationStream {
  return {
    write(line: string): void {
      const entry = JSON.parse(line) as Record<string, unknown>;
      const { time, level, msg, ...rest } = entry;
      const parts = [`time=${time as string}`, `level=${quote(level)}`];
      if (msg !== undefined) parts.push(`msg=${quote(msg)}`);
      for (const [key, value] of Object.entries(rest)) parts.push(`${key}=${quote(value)}`);
      target.write(`${parts.join(" ")}\n`);
    },
  };
}

/** A pino logger as config.yml's `log` section asks for. */
export function createLogger(options: LoggerOptions): OwnedLogger {
  const sonic =
    options.destination === undefined ? pino.destination({ dest: 2, sync: false }) : undefined;
  const target = options.destination ?? sonic!;
  const destination = options.formatter === "text" ? textDestination(target) : target;
  const logger = pino(
    {
      level: options.level,
      base: { ...options.fields },
      // RFC 3339 with milliseconds ("2026-11-28T18:17:52.123Z"), as log shippers parse it.
      timestamp: pino.stdTimeFunctions.isoTime,
      // Level names, not numbers, as distribution writes them.
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return {
    logger,
    flush: () =>
      new Promise<void>((resolve) => {
        if (sonic === undefined) return resolve();
        sonic.flush(() => resolve());
      }),
  };
}
