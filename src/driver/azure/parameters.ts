// The azure driver's parameters, read and checked without loading the Azure SDK, so that a
// malformed configuration fails fast and a process that never uses Azure never loads it.

import { InvalidParameterError, type DriverParameters } from "../driver.js";
import { ParameterReader } from "../parameters.js";
import { isValidPath } from "../paths.js";

export const DRIVER_NAME = "azure";

const MiB = 1024 * 1024;
/** Default size of a staged block: above 4 MiB the service uses its high-throughput path. */
const DEFAULT_BLOCK_SIZE = 8 * MiB;
/** The service's largest block. */
const MAX_BLOCK_SIZE = 4000 * MiB;

/** The azure driver's settings, parsed from its parameters by `parseAzureParameters`. */
export interface AzureDriverOptions {
  /** Storage account name. */
  accountName: string;
  /** The account's shared key (base64); absent: `DefaultAzureCredential` from @azure/identity. */
  accountKey: string | undefined;
  /** The container holding the registry. */
  container: string;
  /** The blob service endpoint, such as `https://<account>.blob.core.windows.net`. */
  serviceUrl: string;
  /** Blob name prefix below which every path is stored: "" or "some/prefix/". */
  rootPrefix: string;
  /** Bytes a writer buffers before staging them as one block. */
  blockSize: number;
}

const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
const ACCOUNT_KEY = /^[A-Za-z0-9+/]+={0,2}$/;
const CONTAINER_NAME = /^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/;
const REALM = /^[A-Za-z0-9.-]+$/;

/**
 * Reads the driver's parameters: `accountname`, `container` (required), `accountkey`, `realm`
 * (default core.windows.net), `serviceurl` (overrides the URL built from account and realm),
 * `rootdirectory`, `chunksize` (block size, default 8 MiB). A missing or malformed one is an
 * InvalidParameterError naming it.
 */
export function parseAzureParameters(parameters: DriverParameters): AzureDriverOptions {
  const reader = new ParameterReader(DRIVER_NAME, parameters);
  const invalid = (key: string, why: string) => new InvalidParameterError(DRIVER_NAME, key, why);

  const accountName = reader.requiredString("accountname");
  if (!ACCOUNT_NAME.test(accountName)) {
    throw invalid(
      "accountname",
      `must be 3 to 24 lowercase letters and digits, got ${JSON.stringify(accountName)}`,
    );
  }
  const accountKey = reader.optionalString("accountkey")?.trim();
  if (accountKey !== undefined && !ACCOUNT_KEY.test(accountKey)) {
    throw invalid("accountkey", "must be the account's base64 access key");
  }
  const container = reader.requiredString("container");
  if (!CONTAINER_NAME.test(container)) {
    throw invalid(
      "container",
      `must be 3 to 63 lowercase letters, digits and single hyphens, got ${JSON.stringify(container)}`,
    );
  }
  const realm = reader.optionalString("realm") ?? "core.windows.net";
  if (!REALM.test(realm))
    throw invalid(
      "realm",
      `must be a DNS suffix such as core.windows.net, got ${JSON.stringify(realm)}`,
    );

  const givenUrl = reader.optionalString("serviceurl") ?? `https://${accountName}.blob.${realm}`;
  const protocol = URL.canParse(givenUrl) ? new URL(givenUrl).protocol : undefined;
  if (protocol !== "https:" && protocol !== "http:") {
    throw invalid("serviceurl", `must be an http(s) URL, got ${JSON.stringify(givenUrl)}`);
  }
  const serviceUrl = givenUrl.replace(/\/+$/, "");

  const root = (reader.optionalString("rootdirectory") ?? "").replace(/^\/+|\/+$/g, "");
  if (root !== "" && !isValidPath(`/${root}`)) {
    throw invalid(
      "rootdirectory",
      `must be /-separated components of [A-Za-z0-9._-], got ${JSON.stringify(root)}`,
    );
  }
  const blockSize = reader.integer("chunksize", DEFAULT_BLOCK_SIZE, MiB, MAX_BLOCK_SIZE);

  return {
    accountName,
    accountKey,
    container,
    serviceUrl,
    rootPrefix: root === "" ? "" : `${root}/`,
    blockSize,
  };
}
