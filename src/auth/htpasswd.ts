// An htpasswd file of bcrypt entries (`htpasswd -B`), as distribution reads it: `user:hash` lines,
// blank lines and `#` comments skipped, the file read again when it changes. A missing file is
// created, as distribution does, with the user `docker` and a random password logged once.
// Successful checks are remembered for a few minutes as an HMAC under a per-process key, so a
// client sending Basic credentials with every request pays bcrypt's cost once, not per request.

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import bcrypt from "bcryptjs";
import { LRUCache } from "lru-cache";
import { KeyFileError } from "./keys.js";
import type { AuthLogger } from "./options.js";

/** The user distribution provisions a missing htpasswd file with. */
export const DEFAULT_USER = "docker";
/** bcrypt's cost for a provisioned password (distribution's bcrypt.DefaultCost). */
const PROVISION_COST = 10;
/** How long a successful check is remembered. */
const REMEMBER_MS = 5 * 60_000;
/** How often, at most, the file's modification time is looked at. */
const STAT_INTERVAL_MS = 1000;

const BCRYPT = /^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/;
/** Hashes of no one's password by bcrypt cost, made when first needed. */
const dummyHashes = new Map<number, Promise<string>>();

/**
 * The cost most of `hashes` have (PROVISION_COST when there are none): what an unknown user's check
 * compares against, so that a miss costs what a hit costs.
 */
export function commonCost(hashes: Iterable<string>): number {
  const counts = new Map<number, number>();
  for (const hash of hashes) {
    const cost = Number(hash.slice(4, 6));
    counts.set(cost, (counts.get(cost) ?? 0) + 1);
  }
  let common = PROVISION_COST;
  let most = 0;
  for (const [cost, count] of counts) {
    if (count > most) [common, most] = [cost, count];
  }
  return common;
}

/** A bcrypt hash of a password no one has, of `cost`. */
export function dummyHash(cost: number): Promise<string> {
  let hash = dummyHashes.get(cost);
  if (hash === undefined) {
    hash = bcrypt.hash(randomBytes(16).toString("base64url"), cost);
    dummyHashes.set(cost, hash);
  }
  return hash;
}

/**
 * Creates `path` with one user and a random password when it does not exist, and logs the
 * password (once: this is how the operator learns it, as with distribution).
 */
export async function provisionHtpasswd(
  path: string,
  key: string,
  logger: AuthLogger,
): Promise<void> {
  try {
    if ((await stat(path)).isDirectory()) {
      throw new KeyFileError(key, `${path} is a directory, not an htpasswd file`);
    }
    return;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const password = randomBytes(32).toString("base64url");
  const hash = await bcrypt.hash(password, PROVISION_COST);
  try {
    await writeFile(path, `${DEFAULT_USER}:${hash}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    // Another process created it first: theirs stands.
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return;
    throw error;
  }
  logger.warn(
    { user: DEFAULT_USER, password, path },
    "htpasswd is missing, provisioning with default user",
  );
}

/** Parses htpasswd text into user → bcrypt hash; other hash kinds are reported by line. */
export function parseHtpasswd(text: string): { entries: Map<string, string>; skipped: number[] } {
  const entries = new Map<string, string>();
  const skipped: number[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const colon = line.indexOf(":");
    const hash = colon === -1 ? "" : line.slice(colon + 1);
    if (colon <= 0 || !BCRYPT.test(hash)) {
      skipped.push(index + 1);
      return;
    }
    entries.set(line.slice(0, colon), hash);
  });
  return { entries, skipped };
}

/** The users of one htpasswd file. */
export class HtpasswdFile {
  private entries = new Map<string, string>();
  /** The cost of most entries: an unknown user's check runs bcrypt at it. */
  private cost = PROVISION_COST;
  private modified = -1;
  private checkedAt = 0;
  private loading: Promise<void> | undefined;
  private readonly secret = randomBytes(32);
  private readonly remembered = new LRUCache<string, Buffer>({ max: 1000, ttl: REMEMBER_MS });

  constructor(
    readonly path: string,
    private readonly logger: AuthLogger,
  ) {}

  /** Reads the file when it changed (looking at most once a second). */
  private async refresh(): Promise<void> {
    const now = Date.now();
    if (now - this.checkedAt < STAT_INTERVAL_MS && this.modified !== -1) return;
    this.loading ??= (async () => {
      try {
        const info = await stat(this.path);
        this.checkedAt = Date.now();
        if (info.mtimeMs === this.modified) return;
        const { entries, skipped } = parseHtpasswd(await readFile(this.path, "utf8"));
        if (skipped.length > 0) {
          this.logger.warn(
            { path: this.path, lines: skipped },
            "htpasswd: lines that are not user:bcrypt-hash are ignored",
          );
        }
        this.entries = entries;
        this.cost = commonCost(entries.values());
        this.modified = info.mtimeMs;
        this.remembered.clear();
      } finally {
        this.loading = undefined;
      }
    })();
    await this.loading;
  }

  /** True when `user` is in the file. */
  async has(user: string): Promise<boolean> {
    await this.refresh();
    return this.entries.has(user);
  }

  /** True when `password` is `user`'s. Constant-time with respect to the stored secrets. */
  async verify(user: string, password: string): Promise<boolean> {
    await this.refresh();
    const hash = this.entries.get(user);
    const mac = createHmac("sha256", this.secret).update(`${user}\0${password}`).digest();
    const known = this.remembered.get(user);
    if (hash !== undefined && known !== undefined && timingSafeEqual(known, mac)) return true;
    const matches = await bcrypt.compare(password, hash ?? (await dummyHash(this.cost)));
    if (!matches || hash === undefined) return false;
    // The file may have changed while bcrypt ran: remember only against the current entry.
    if (this.entries.get(user) === hash) this.remembered.set(user, mac);
    return true;
  }
}
