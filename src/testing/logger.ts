// Test support: a pino logger whose entries a test can read.

import { Writable } from "node:stream";
import { pino, type Logger } from "pino";

/** A pino logger (level info) writing into `lines`, parsed. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n")) {
        if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      callback();
    },
  });
  return { logger: pino({ level: "info" }, stream), lines };
}
