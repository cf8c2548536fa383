// The notifications section of config.yml, distribution's keys: `events.includereferences` and
// `endpoints[]` (`name`, `disabled`, `url`, `headers`, `timeout`, `threshold`, `backoff`,
// `ignoredmediatypes`, `ignore.mediatypes`, `ignore.actions`). Berth adds `spooldir`, a local
// directory for the events not delivered yet (else they are kept in the storage).

import {
  EVENT_ACTIONS,
  type EndpointConfig,
  type EventAction,
  type NotificationsConfig,
} from "../notify/index.js";
import type { ConfigReader, Mapping } from "./reader.js";

const defaults = { timeoutMs: 1_000, threshold: 10, backoffMs: 1_000 };

function readEndpoint(
  reader: ConfigReader,
  entry: Mapping,
  key: string,
): EndpointConfig | undefined {
  reader.unknownKeys(entry, key, [
    "name",
    "disabled",
    "url",
    "headers",
    "timeout",
    "threshold",
    "backoff",
    "ignoredmediatypes",
    "ignore",
  ]);
  const name = reader.string(entry.name, `${key}.name`) ?? "";
  if (name === "") reader.fail(`${key}.name`, "is required");
  const url = reader.string(entry.url, `${key}.url`) ?? "";
  // The URL is not repeated in the message: it may carry credentials.
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    reader.fail(`${key}.url`, "is required and must be an http(s) URL");
  }
  const headers: Record<string, string[]> = {};
  for (const [header, values] of Object.entries(reader.mapping(entry.headers, `${key}.headers`))) {
    headers[header] = reader.stringList(values, `${key}.headers.${header}`);
  }
  const ignore = reader.mapping(entry.ignore, `${key}.ignore`);
  reader.unknownKeys(ignore, `${key}.ignore`, ["mediatypes", "actions"]);
  const ignoredActions: EventAction[] = [];
  for (const action of reader.stringList(ignore.actions, `${key}.ignore.actions`)) {
    if ((EVENT_ACTIONS as readonly string[]).includes(action)) {
      ignoredActions.push(action as EventAction);
    } else {
      reader.fail(
        `${key}.ignore.actions`,
        `unknown action ${JSON.stringify(action)}, must be one of ${EVENT_ACTIONS.join(", ")}`,
      );
    }
  }
  const config: EndpointConfig = {
    name,
    url,
    headers,
    timeoutMs:
      reader.duration(entry.timeout, `${key}.timeout`, defaults.timeoutMs) || defaults.timeoutMs,
    threshold: reader.integer(entry.threshold, `${key}.threshold`, defaults.threshold),
    backoffMs:
      reader.duration(entry.backoff, `${key}.backoff`, defaults.backoffMs) || defaults.backoffMs,
    ignoredMediaTypes: [
      ...reader.stringList(entry.ignoredmediatypes, `${key}.ignoredmediatypes`),
      ...reader.stringList(ignore.mediatypes, `${key}.ignore.mediatypes`),
    ],
    ignoredActions,
    disabled: reader.boolean(entry.disabled, `${key}.disabled`, false),
  };
  return name === "" ? undefined : config;
}

export function readNotifications(reader: ConfigReader, tree: Mapping): NotificationsConfig {
  const section = reader.mapping(tree.notifications, "notifications");
  reader.unknownKeys(section, "notifications", ["events", "endpoints", "spooldir"]);
  const events = reader.mapping(section.events, "notifications.events");
  reader.unknownKeys(events, "notifications.events", ["includereferences"]);
  const list = section.endpoints;
  const endpoints: EndpointConfig[] = [];
  if (list !== undefined && list !== null && !Array.isArray(list)) {
    reader.fail("notifications.endpoints", "must be a list");
  }
  for (const [index, item] of (Array.isArray(list) ? list : []).entries()) {
    const key = `notifications.endpoints[${index}]`;
    const endpoint = readEndpoint(reader, reader.mapping(item, key), key);
    if (endpoint === undefined) continue;
    if (endpoints.some((other) => other.name === endpoint.name)) {
      reader.fail(`${key}.name`, `${JSON.stringify(endpoint.name)} names two endpoints`);
      continue;
    }
    endpoints.push(endpoint);
  }
  const spoolDirectory = reader.string(section.spooldir, "notifications.spooldir");
  if (spoolDirectory !== undefined && !spoolDirectory.startsWith("/")) {
    reader.fail(
      "notifications.spooldir",
      `must be an absolute path, got ${JSON.stringify(spoolDirectory)}`,
    );
  }
  return {
    includeReferences: reader.boolean(
      events.includereferences,
      "notifications.events.includereferences",
      false,
    ),
    endpoints,
    spoolDirectory: spoolDirectory || undefined,
  };
}
