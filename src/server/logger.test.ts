import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "./logger.js";

function collect(): { lines: string[]; destination: { write(line: string): void } } {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line) } };
}

describe("createLogger", () => {
  it("writes JSON lines with level names and the config's fields, from the configured level", () => {
    const { lines, destination } = collect();
    const { logger } = createLogger({
      level: "warn",
      formatter: "json",
      fields: { service: "registry" },
      destination,
    });
    logger.info("hidden");
    logger.warn({ key: "http.secret" }, "ignored");
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal(entry.level, "warn");
    assert.equal(entry.service, "registry");
    assert.equal(entry.key, "http.secret");
    assert.equal(entry.msg, "ignored");
    assert.match(entry.time as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("writes key=value lines with the text formatter", () => {
    const { lines, destination } = collect();
    const { logger } = createLogger({ level: "debug", formatter: "text", destination });
    logger.debug({ path: "/v2/", status: 200, agent: "skopeo/1.9 (linux)" }, "request");
    assert.match(
      lines[0]!,
      /^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=debug msg=request path=\/v2\/ status=200 agent="skopeo\/1\.9 \(linux\)"\n$/,
    );
  });
});
