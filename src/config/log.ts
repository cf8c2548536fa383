// The log section of config.yml (and the deprecated top-level `loglevel`).

import type { ConfigReader, Mapping } from "./reader.js";

/** Log levels of config.yml (`log.level`). */
export type LogLevel = "error" | "warn" | "info" | "debug";

/** The log section. */
export interface LogConfig {
  level: LogLevel;
  /** `json` (the default) or `text` (one `key=value` line per entry). */
  formatter: "json" | "text";
  /** `log.fields`: added to every log entry. */
  fields: Record<string, unknown>;
  /** False when `log.accesslog.disabled` is true. */
  accessLog: boolean;
}

export function readLog(reader: ConfigReader, tree: Mapping): LogConfig {
  const log = reader.mapping(tree.log, "log");
  reader.unknownKeys(log, "log", [
    "level",
    "formatter",
    "fields",
    "accesslog",
    "hooks",
    "reportcaller",
  ]);
  const levels = ["error", "warn", "info", "debug"] as const;
  let level = reader.oneOf(log.level, "log.level", levels, "info");
  if (log.level === undefined && tree.loglevel !== undefined) {
    reader.warn("loglevel", "deprecated, use log.level");
    level = reader.oneOf(tree.loglevel, "loglevel", levels, "info");
  } else if (tree.loglevel !== undefined) {
    reader.warn("loglevel", "deprecated, ignored: log.level is set");
  }
  let formatter = reader.oneOf(
    log.formatter,
    "log.formatter",
    ["json", "text", "logstash"],
    "json",
  );
  if (formatter === "logstash") {
    reader.warn("log.formatter", "logstash is written as json");
    formatter = "json";
  }
  if (log.hooks !== undefined) reader.warn("log.hooks", "log hooks are not supported, ignored");
  if (log.reportcaller !== undefined) reader.warn("log.reportcaller", "not supported, ignored");
  const accessLog = reader.mapping(log.accesslog, "log.accesslog");
  reader.unknownKeys(accessLog, "log.accesslog", ["disabled"]);
  return {
    level,
    formatter,
    fields: { ...reader.mapping(log.fields, "log.fields") },
    accessLog: !reader.boolean(accessLog.disabled, "log.accesslog.disabled", false),
  };
}
