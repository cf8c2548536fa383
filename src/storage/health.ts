// The storage driver health probe (`health.storagedriver`): proof that the backend still holds
// what it was given, not only that it answers. Each check reads back the probe file the previous
// check wrote; a probe that is gone (the storage root deleted, a volume unmounted, a bucket
// emptied) fails the check, and keeps failing until the file is back, since writing it again would
// hide the loss. Read-only registries write nothing: they check that the layout root they saw is
// still there.

import type { StorageDriver } from "../driver/index.js";
import { unlessNotFound } from "./blobstore.js";
import { paths, STORAGE_ROOT } from "./paths.js";

/** Why a probe failed, in words fit for an unauthenticated client (details go to the log). */
export class HealthProbeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "HealthProbeError";
  }
}

/** Probes one storage driver; `check()` is called periodically. */
export class HealthProbe {
  private written: string | undefined;
  private rootSeen = false;

  constructor(
    private readonly driver: StorageDriver,
    private readonly instance: string,
    private readonly readOnly: boolean,
  ) {}

  /** Resolves when the storage holds what it held and takes a write; else HealthProbeError. */
  async check(): Promise<void> {
    const probe = paths.healthProbe(this.instance);
    try {
      if (this.readOnly) {
        const root = await unlessNotFound(this.driver.stat(STORAGE_ROOT));
        if (root === undefined && this.rootSeen)
          throw new HealthProbeError("storage content is gone");
        if (root !== undefined) this.rootSeen = true;
        return;
      }
      // The probe is written once and only read back after: a write racing with the root's
      // deletion must not bring it back. Each check's write goes to a second file.
      if (this.written !== undefined) {
        const content = await unlessNotFound(this.driver.getContent(probe));
        if (content === undefined || Buffer.from(content).toString("utf8") !== this.written) {
          throw new HealthProbeError("storage content is gone");
        }
      }
      const stamp = `${this.instance} ${new Date().toISOString()}`;
      if (this.written === undefined) {
        await this.driver.putContent(probe, Buffer.from(stamp, "utf8"));
        this.written = stamp;
      }
      await this.driver.putContent(
        paths.healthProbeWrite(this.instance),
        Buffer.from(stamp, "utf8"),
      );
    } catch (error) {
      if (error instanceof HealthProbeError) throw error;
      throw new HealthProbeError("storage driver unavailable", { cause: error });
    }
  }

  /** Removes the probe file (when the registry stops); never fails. */
  async remove(): Promise<void> {
    if (this.written === undefined) return;
    await unlessNotFound(this.driver.delete(paths.healthProbe(this.instance))).catch(() => {});
    await unlessNotFound(this.driver.delete(paths.healthProbeWrite(this.instance))).catch(() => {});
  }
}
