// The SDKs of the s3 and azure drivers are optional peer dependencies: a registry on the
// filesystem does not install them. A driver loads its SDK when it is created, through this, so
// that a missing one fails with the npm packages to install rather than a bare module error.

import { InvalidStorageDriverError } from "./driver.js";

/**
 * Runs `load` (a dynamic import of the driver's module, which imports its SDK). When it fails
 * because one of `packages` is not installed, rejects with an InvalidStorageDriverError naming
 * the packages the driver needs and the command that installs them; other failures pass through.
 */
export async function loadDriverModule<T>(
  driverName: string,
  packages: readonly string[],
  load: () => Promise<T>,
): Promise<T> {
  try {
    return await load();
  } catch (error) {
    const missing = missingPackage(error, packages);
    if (missing === undefined) throw error;
    const list = packages.join(" ");
    throw new InvalidStorageDriverError(
      driverName,
      `the ${driverName} driver needs the npm package${packages.length > 1 ? "s" : ""} ${list} ` +
        `(${missing} is not installed): run \`npm install ${list}\``,
    );
  }
}

/** Which of `packages` a failed import could not find, if that is why it failed. */
function missingPackage(error: unknown, packages: readonly string[]): string | undefined {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  if (code !== "ERR_MODULE_NOT_FOUND" || typeof message !== "string") return undefined;
  // Node: "Cannot find package '@aws-sdk/client-s3' imported from /…/driver.js".
  return packages.find((name) => message.includes(`'${name}'`));
}
