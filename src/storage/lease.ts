// The garbage collector's lease, kept in the storage itself so that replicas sharing a bucket
// need nothing else: `/berth/gc/lease` holds {owner, id, ttlMs}; it is held while its modTime
// (the backend's clock) is less than ttlMs old. It is created with the driver's conditional
// write (putContentIfAbsent: O_EXCL, If-None-Match), so of two replicas only one gets it.
//
// An expired lease (its holder died) is replaced by the one replica that first creates
// `lease-takeover/<id>` for it, again conditionally; that replica checks the lease is still <id>
// just before deleting it. Renewal rewrites the lease after checking it is still ours. The
// windows between a check and a write are milliseconds against a TTL of tens of seconds.

import { randomUUID } from "node:crypto";
import { unlessNotFound } from "./blobstore.js";
import type { StorageDriver } from "../driver/index.js";
import { paths } from "./paths.js";
import type { GcLease } from "./types.js";

interface LeaseRecord {
  owner: string;
  id: string;
  ttlMs: number;
}

async function readLease(driver: StorageDriver): Promise<LeaseRecord | undefined> {
  const content = await unlessNotFound(driver.getContent(paths.gcLease()));
  if (content === undefined) return undefined;
  try {
    const record = JSON.parse(Buffer.from(content).toString("utf8")) as Partial<LeaseRecord>;
    if (
      typeof record.id === "string" &&
      /^[A-Za-z0-9-]{1,64}$/.test(record.id) &&
      typeof record.ttlMs === "number"
    ) {
      return { owner: String(record.owner), id: record.id, ttlMs: record.ttlMs };
    }
  } catch {
    // Unreadable: treated as expired below.
  }
  return { owner: "unknown", id: "unreadable", ttlMs: 0 };
}

/** True when the lease at `paths.gcLease()` has not been renewed for its TTL (backend clock). */
async function expired(driver: StorageDriver, record: LeaseRecord): Promise<boolean> {
  const lease = await unlessNotFound(driver.stat(paths.gcLease()));
  if (lease === undefined) return true;
  await driver.putContent(paths.gcClock(), Buffer.from(new Date().toISOString(), "utf8"));
  const now = (await driver.stat(paths.gcClock())).modTime.getTime();
  return now - lease.modTime.getTime() > record.ttlMs;
}

class StoredLease implements GcLease {
  constructor(
    private readonly driver: StorageDriver,
    private readonly record: LeaseRecord,
  ) {}

  get owner(): string {
    return this.record.owner;
  }

  async renew(): Promise<boolean> {
    const current = await readLease(this.driver);
    if (current?.id !== this.record.id) return false;
    await this.driver.putContent(paths.gcLease(), encode(this.record));
    return true;
  }

  async release(): Promise<void> {
    const current = await readLease(this.driver);
    if (current?.id !== this.record.id) return;
    await unlessNotFound(this.driver.delete(paths.gcLease()));
  }
}

function encode(record: LeaseRecord): Buffer {
  return Buffer.from(JSON.stringify(record), "utf8");
}

/** Takes the lease, or undefined when another live collector holds it. */
export async function acquireLease(
  driver: StorageDriver,
  owner: string,
  ttlMs: number,
): Promise<GcLease | undefined> {
  const record: LeaseRecord = { owner, id: randomUUID(), ttlMs };
  const create = (): Promise<boolean> =>
    driver.putContentIfAbsent
      ? driver.putContentIfAbsent(paths.gcLease(), encode(record))
      : Promise.resolve(false);
  if (await create()) return new StoredLease(driver, record);
  const current = await readLease(driver);
  if (current === undefined) {
    return (await create()) ? new StoredLease(driver, record) : undefined;
  }
  if (!(await expired(driver, current))) return undefined;
  const claim = paths.gcLeaseTakeover(current.id);
  if (!(await driver.putContentIfAbsent?.(claim, encode(record)))) return undefined;
  if ((await readLease(driver))?.id !== current.id) return undefined;
  await unlessNotFound(driver.delete(paths.gcLease()));
  return (await create()) ? new StoredLease(driver, record) : undefined;
}
