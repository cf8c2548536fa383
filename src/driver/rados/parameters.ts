// The rados driver's parameters, with the names of distribution's rados driver (removed in 2016):
// `poolname` (required), `username` (a Ceph id: "admin", not "client.admin"), `chunksize`; and
// Berth's `conffile` and `keyring`. storage.rados in config.yml, or REGISTRY_STORAGE_RADOS_*
// environment overrides (strings). Checked once, at creation: a bad one is an InvalidParameterError.

import { InvalidParameterError, type DriverParameters } from "../driver.js";
import { ParameterReader } from "../parameters.js";

export const DRIVER_NAME = "rados";

const KiB = 1024;
const MiB = 1024 * KiB;

/** distribution's default stripe: content is kept in RADOS objects of this many bytes. */
export const DEFAULT_CHUNK_SIZE = 4 * MiB;
/** Bounds of `chunksize`: small stripes cost a round trip each, large ones memory per writer. */
export const MIN_CHUNK_SIZE = 64 * KiB;
export const MAX_CHUNK_SIZE = 64 * MiB;

/** The driver's settings after validation. */
export interface RadosParameters {
  poolname: string;
  /** The Ceph id the driver connects as ("admin" is client.admin). */
  username: string;
  chunksize: number;
  /** The ceph.conf to read; undefined: $CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf. */
  conffile: string | undefined;
  /** The keyring file, overriding the configuration's. */
  keyring: string | undefined;
}

/** Reads and checks the rados driver's parameters. */
export function readRadosParameters(parameters: DriverParameters): RadosParameters {
  const reader = new ParameterReader(DRIVER_NAME, parameters);
  const poolname = reader.requiredString("poolname");
  const username = reader.optionalString("username") ?? "admin";
  if (username.startsWith("client.")) {
    throw new InvalidParameterError(
      DRIVER_NAME,
      "username",
      `is a Ceph id without the "client." prefix (${JSON.stringify(username.slice(7))}, not ${JSON.stringify(username)})`,
    );
  }
  if (!/^[A-Za-z0-9._-]+$/.test(username)) {
    throw new InvalidParameterError(
      DRIVER_NAME,
      "username",
      `must be a Ceph id (letters, digits, . _ -), got ${JSON.stringify(username)}`,
    );
  }
  if (!/^[^\0]+$/.test(poolname)) {
    throw new InvalidParameterError(
      DRIVER_NAME,
      "poolname",
      `is not a pool name: ${JSON.stringify(poolname)}`,
    );
  }
  return {
    poolname,
    username,
    chunksize: reader.integer("chunksize", DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE),
    conffile: reader.optionalString("conffile"),
    keyring: reader.optionalString("keyring"),
  };
}
