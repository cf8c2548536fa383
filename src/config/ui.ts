// The ui section of config.yml (Berth's own, distribution has none): the web UI served beside the
// API. `ui: {enabled: true, path: /}`. Off unless enabled; `berth serve` without a config file
// turns it on (the default config of `npm start`).

import type { ConfigReader, Mapping } from "./reader.js";

/** The ui section. */
export interface UiConfig {
  /** `ui.enabled`: serve the web UI. Default false (true in the config `berth serve` runs without a file). */
  enabled: boolean;
  /**
   * `ui.path`: where the UI is served below `http.prefix`, without a trailing slash except for
   * the root "/" (the default). Never `/v2` or below it: that is the API's.
   */
  path: string;
}

/** Paths the UI may not take: the API's, and the health endpoint's. */
const reserved = ["/v2", "/debug"];

export function readUi(reader: ConfigReader, tree: Mapping): UiConfig {
  const ui = reader.mapping(tree.ui, "ui");
  reader.unknownKeys(ui, "ui", ["enabled", "path"]);
  const enabled = reader.boolean(ui.enabled, "ui.enabled", false);
  const raw = reader.string(ui.path, "ui.path") ?? "/";
  let path = raw.length > 1 ? raw.replace(/\/+$/, "") : raw;
  if (!path.startsWith("/") || /[?#%\s\\]/.test(path) || path.split("/").includes("..")) {
    reader.fail("ui.path", `${JSON.stringify(raw)} must be a path starting with "/"`);
    path = "/";
  } else if (reserved.some((taken) => path === taken || path.startsWith(`${taken}/`))) {
    reader.fail("ui.path", `${JSON.stringify(raw)} is the registry API's; choose another path`);
    path = "/";
  }
  return { enabled, path };
}
