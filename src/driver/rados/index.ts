// The rados driver's entry: registers "rados" with the factory. koffi (an optional peer dependency)
// and librados (Debian's librados2) load only when a rados driver is created, so the driver layer
// stays cheap to import and a registry that does not use Ceph needs neither. See ./driver.ts for
// the layout on RADOS and docs/driver-rados.md for its use.

import { InvalidStorageDriverError, type DriverParameters, type DriverUse } from "../driver.js";
import { registerDriver } from "../factory.js";
import { loadDriverModule } from "../sdk.js";
import type { RadosDriver } from "./driver.js";
import { DRIVER_NAME, readRadosParameters } from "./parameters.js";

export { readRadosParameters, type RadosParameters } from "./parameters.js";
export type { RadosDriver } from "./driver.js";

/** The npm package the rados driver needs (an optional peer dependency of Berth). */
export const RADOS_PACKAGES = ["koffi"] as const;

/**
 * Creates a rados driver (see docs/driver-rados.md): checks the parameters, loads koffi and
 * librados, connects and opens the pool. A bad parameter, a missing package or library, an
 * unreachable cluster or a missing pool rejects with an error naming it.
 */
export async function createRadosDriver(
  parameters: DriverParameters,
  use: DriverUse = {},
): Promise<RadosDriver> {
  const checked = readRadosParameters(parameters);
  const { koffi } = await loadDriverModule(DRIVER_NAME, RADOS_PACKAGES, async () => ({
    koffi: (await import("koffi")).default,
  }));
  const module = await import("./driver.js");
  try {
    module.loadLibrados(koffi);
  } catch (error) {
    throw new InvalidStorageDriverError(
      DRIVER_NAME,
      `the rados driver needs librados (librados.so.2, Debian's package librados2: ` +
        `apt-get install librados2): ${(error as Error).message}`,
    );
  }
  void use;
  return module.RadosDriver.connect(checked);
}

registerDriver(DRIVER_NAME, (parameters, use) => createRadosDriver(parameters, use), {
  known: ["poolname", "username", "chunksize", "conffile", "keyring"],
});
