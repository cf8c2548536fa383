// The proxy section of config.yml: distribution's pull-through cache of one upstream
// (`proxy.remoteurl`, `username`, `password`, `ttl`: the whole registry mirrors it) and Berth's
// several upstreams in one registry (`proxy.upstreams`, each serving the repositories under its
// `prefix`). The two shapes are exclusive.

import type { ConfigReader, Mapping } from "./reader.js";

/** distribution's default `proxy.ttl`: cached content expires a week after its last pull. */
export const DEFAULT_PROXY_TTL_MS = 168 * 3600_000;

/** One upstream registry the cache pulls through from. */
export interface UpstreamConfig {
  /**
   * Repositories under this prefix (such as "docker.io/") are served from the upstream, with the
   * prefix removed from their names there. "" (distribution's `proxy.remoteurl`) mirrors the whole
   * registry.
   */
  prefix: string;
  /** The upstream's base URL, such as https://registry-1.docker.io (no credentials in it). */
  remoteURL: string;
  username?: string;
  password?: string;
  /**
   * A tag is revalidated upstream once this long has passed since it was last checked, and a
   * repository that was only cached expires this long after it was last pulled.
   */
  ttlMs: number;
}

/** The proxy section: no upstream means an ordinary registry. */
export interface ProxyConfig {
  upstreams: UpstreamConfig[];
}

const UPSTREAM_KEYS = ["remoteurl", "username", "password", "ttl"];
// A prefix is one or more repository name components, each followed by a slash.
const PREFIX = /^(?:[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\/)+$/;

function readRemoteURL(reader: ConfigReader, value: unknown, key: string): string {
  const text = reader.string(value, key);
  if (text === undefined || text === "") {
    reader.fail(key, "is required: the URL of the upstream registry");
    return "";
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    reader.fail(key, `${JSON.stringify(text)} is not a URL such as https://registry-1.docker.io`);
    return "";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    reader.fail(key, `must be an http or https URL, got ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    // Never echo the value: it holds a credential.
    reader.fail(key, "must not carry credentials; use username and password");
  }
  return text.replace(/\/+$/, "");
}

function readUpstream(
  reader: ConfigReader,
  section: Mapping,
  key: string,
  prefix: string,
): UpstreamConfig {
  const username = reader.string(section.username, `${key}.username`);
  const password = reader.string(section.password, `${key}.password`);
  if ((username === undefined) !== (password === undefined)) {
    reader.fail(key, "username and password go together");
  }
  return {
    prefix,
    remoteURL: readRemoteURL(reader, section.remoteurl, `${key}.remoteurl`),
    ...(username !== undefined ? { username, password } : {}),
    ttlMs: reader.duration(section.ttl, `${key}.ttl`, DEFAULT_PROXY_TTL_MS),
  };
}

export function readProxy(reader: ConfigReader, tree: Mapping): ProxyConfig {
  const proxy = reader.mapping(tree.proxy, "proxy");
  reader.unknownKeys(proxy, "proxy", [...UPSTREAM_KEYS, "upstreams", "exec"]);
  if (proxy.exec !== undefined) reader.warn("proxy.exec", "credential helpers are not supported");
  const list = proxy.upstreams;
  if (list === undefined || list === null) {
    if (proxy.remoteurl === undefined) return { upstreams: [] };
    return { upstreams: [readUpstream(reader, proxy, "proxy", "")] };
  }
  if (proxy.remoteurl !== undefined) {
    reader.fail("proxy.upstreams", "give either proxy.remoteurl or proxy.upstreams, not both");
  }
  if (!Array.isArray(list)) {
    reader.fail(
      "proxy.upstreams",
      "must be a list of {prefix, remoteurl, username, password, ttl}",
    );
    return { upstreams: [] };
  }
  const upstreams: UpstreamConfig[] = [];
  list.forEach((item: unknown, index) => {
    const key = `proxy.upstreams[${index}]`;
    const section = reader.mapping(item, key);
    reader.unknownKeys(section, key, ["prefix", ...UPSTREAM_KEYS]);
    const prefix = reader.string(section.prefix, `${key}.prefix`) ?? "";
    if (!PREFIX.test(prefix)) {
      reader.fail(
        `${key}.prefix`,
        `${JSON.stringify(prefix)} must be repository name components ending with a slash, such as "docker.io/"`,
      );
    }
    const clash = upstreams.find(
      (other) => prefix.startsWith(other.prefix) || other.prefix.startsWith(prefix),
    );
    if (clash !== undefined) {
      reader.fail(
        `${key}.prefix`,
        `${JSON.stringify(prefix)} overlaps ${JSON.stringify(clash.prefix)}`,
      );
    }
    upstreams.push(readUpstream(reader, section, key, prefix));
  });
  return { upstreams };
}
