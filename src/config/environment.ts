// distribution's environment overrides: REGISTRY_<PATH> sets the config key at PATH, the path's
// components joined by `_` (REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY sets
// storage.filesystem.rootdirectory). Variables are applied in lexical order of their names, so a
// less specific one (REGISTRY_STORAGE=s3, which picks the driver) comes before the more specific
// ones under it (REGISTRY_STORAGE_S3_BUCKET). A component matches an existing key whatever its case;
// a key that does not exist yet is created in lower case.
//
// Values stay strings: Berth's own keys and the drivers' parameter readers accept "true", "5000"
// and the like, so a secret such as "0123" is never turned into a number on the way in.

import { isMapping } from "./reader.js";
import { storageOptions } from "./storage.js";

const prefix = "REGISTRY_";

/** The raw config tree after overrides, and which variable set each key it touched. */
export interface OverriddenConfig {
  tree: Record<string, unknown>;
  /** Dotted key path (as in the tree) → the variable that set it, for error messages. */
  origins: Map<string, string>;
}

/** The key of `mapping` matching the upper-case component `name`, or `name` in lower case. */
function keyFor(mapping: Record<string, unknown>, name: string): string {
  for (const key of Object.keys(mapping)) {
    if (key.toUpperCase() === name) return key;
  }
  return name.toLowerCase();
}

/**
 * `REGISTRY_STORAGE=<driver>` names the driver. distribution replaces the whole storage section
 * then; Berth keeps `delete`, `redirect`, `maintenance` and the driver's own parameters when the
 * name does not change, and drops the sections of any other driver.
 */
function selectStorageDriver(tree: Record<string, unknown>, driver: string): void {
  const storage = isMapping(tree.storage) ? tree.storage : {};
  const selected: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(storage)) {
    if (storageOptions.has(key) || key === driver) selected[key] = value;
  }
  selected[driver] ??= {};
  tree.storage = selected;
}

/** Applies the REGISTRY_* variables of `env` to a copy of `tree`. */
export function applyEnvironment(
  tree: Record<string, unknown>,
  env: Record<string, string | undefined>,
): OverriddenConfig {
  const result = structuredClone(tree);
  // `storage: inmemory` is shorthand for a driver section without parameters.
  if (typeof result.storage === "string") result.storage = { [result.storage]: {} };
  const origins = new Map<string, string>();
  const names = Object.keys(env)
    .filter((name) => name.startsWith(prefix) && name.length > prefix.length)
    .sort();
  for (const name of names) {
    const value = env[name]!;
    const path = name.slice(prefix.length).split("_");
    if (path.some((component) => component === "")) continue;
    if (path.length === 1 && path[0] === "STORAGE") {
      selectStorageDriver(result, value.trim().toLowerCase());
      origins.set("storage", name);
      continue;
    }
    let mapping = result;
    const keys: string[] = [];
    for (const component of path.slice(0, -1)) {
      const key = keyFor(mapping, component);
      keys.push(key);
      if (!isMapping(mapping[key])) mapping[key] = {};
      mapping = mapping[key] as Record<string, unknown>;
    }
    const last = keyFor(mapping, path[path.length - 1]!);
    keys.push(last);
    mapping[last] = value;
    origins.set(keys.join("."), name);
  }
  return { tree: result, origins };
}
