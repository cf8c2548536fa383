// The s3 driver's parameters, with distribution's names (storage.s3 in config.yml, or
// REGISTRY_STORAGE_S3_* environment overrides, which arrive as strings). Everything is checked here,
// once, at creation: a missing or malformed parameter is an InvalidParameterError naming it.

import type { ObjectCannedACL, StorageClass } from "@aws-sdk/client-s3";
import { InvalidParameterError, type DriverParameters } from "../driver.js";
import { ParameterReader } from "../parameters.js";

export const DRIVER_NAME = "s3";

const MiB = 1024 * 1024;

/** S3's smallest part of a multipart upload (all but the last part). */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part, and the largest object a single CopyObject may copy. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;

// The SDK's lists spelled out rather than read from its enums at run time: this module loads with
// the driver layer, and the SDK only when an s3 driver is created (see ./index.ts). `satisfies`
// keeps every name one the SDK knows.

/** Storage classes accepted by `storageclass`; NONE sends no storage class (for S3-compatible servers). */
const STORAGE_CLASSES = [
  "NONE",
  ...([
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
    "FSX_ONTAP",
    "FSX_OPENZFS",
    "AWS_BACKUP_WARM",
    "AWS_BACKUP_LOW_COST_WARM",
  ] as const satisfies readonly StorageClass[]),
] as const;
/** Canned ACLs accepted by `objectacl`; NONE sends no ACL header (the default, see docs/driver-s3.md). */
const OBJECT_ACLS = [
  "none",
  ...([
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
  ] as const satisfies readonly ObjectCannedACL[]),
] as const;

/** The driver's settings after validation. */
export interface S3Parameters {
  bucket: string;
  region: string;
  /** The endpoint URL, with its scheme; undefined for AWS's own endpoints. */
  regionEndpoint: string | undefined;
  forcePathStyle: boolean;
  /** Static credentials; undefined means the SDK's default credential chain. */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
  /** Key prefix everything is stored under: "" or "some/dir/" (no leading slash, one trailing). */
  keyPrefix: string;
  secure: boolean;
  skipVerify: boolean;
  /** Server-side encryption to request, if any. */
  encryption: { mode: "AES256" } | { mode: "aws:kms"; keyId: string } | undefined;
  /** undefined: send none. */
  storageClass: StorageClass | undefined;
  /** undefined: send none. */
  objectACL: ObjectCannedACL | undefined;
  chunkSize: number;
  multipartCopyChunkSize: number;
  multipartCopyMaxConcurrency: number;
  multipartCopyThresholdSize: number;
  userAgent: string | undefined;
}

/** Validates `parameters` into S3Parameters; throws InvalidParameterError naming the first bad one. */
export function readS3Parameters(parameters: DriverParameters): S3Parameters {
  const read = new ParameterReader(DRIVER_NAME, parameters);
  const fail = (key: string, message: string) =>
    new InvalidParameterError(DRIVER_NAME, key, message);

  const bucket = read.requiredString("bucket");
  const region = read.requiredString("region");
  const secure = read.boolean("secure", true);
  const skipVerify = read.boolean("skipverify", false);

  // distribution 2.x had v2 signing behind v4auth=false; the AWS SDK v3 only signs with v4.
  if (!read.boolean("v4auth", true)) {
    throw fail(
      "v4auth",
      "false is not supported: this driver signs requests with AWS Signature V4 only",
    );
  }

  let regionEndpoint = read.optionalString("regionendpoint");
  if (regionEndpoint !== undefined) {
    // distribution accepts a bare host[:port]; the scheme then follows `secure`.
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(regionEndpoint)) {
      regionEndpoint = `${secure ? "https" : "http"}://${regionEndpoint}`;
    }
    let url: URL;
    try {
      url = new URL(regionEndpoint);
    } catch {
      throw fail(
        "regionendpoint",
        `must be a URL such as https://s3.example.com:9000, got ${JSON.stringify(regionEndpoint)}`,
      );
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw fail(
        "regionendpoint",
        `must be an http or https URL, got ${JSON.stringify(regionEndpoint)}`,
      );
    }
  } else if (!secure) {
    regionEndpoint = `http://s3.${region}.amazonaws.com`;
  }
  // distribution 2.x always used path-style addressing with a custom endpoint; S3-compatible
  // servers (Ceph RGW, MinIO) mostly need it, AWS itself prefers virtual-hosted style.
  const forcePathStyle = read.boolean(
    "forcepathstyle",
    read.optionalString("regionendpoint") !== undefined,
  );

  const accessKey = read.optionalString("accesskey");
  const secretKey = read.optionalString("secretkey");
  const sessionToken = read.optionalString("sessiontoken");
  if ((accessKey === undefined) !== (secretKey === undefined)) {
    const missing = accessKey === undefined ? "accesskey" : "secretkey";
    const given = accessKey === undefined ? "secretkey" : "accesskey";
    throw fail(
      missing,
      `is required when ${given} is given (give both, or neither for the default credential chain)`,
    );
  }
  if (sessionToken !== undefined && accessKey === undefined) {
    throw fail("sessiontoken", "needs accesskey and secretkey");
  }
  const credentials =
    accessKey !== undefined && secretKey !== undefined
      ? {
          accessKeyId: accessKey,
          secretAccessKey: secretKey,
          ...(sessionToken ? { sessionToken } : {}),
        }
      : undefined;

  const rootDirectory = read.optionalString("rootdirectory") ?? "";
  const trimmedRoot = rootDirectory.replace(/^\/+|\/+$/g, "");
  if (trimmedRoot.split("/").some((part) => part === "." || part === "..")) {
    throw fail(
      "rootdirectory",
      `must not contain . or .. components, got ${JSON.stringify(rootDirectory)}`,
    );
  }
  if (trimmedRoot.includes("//")) {
    throw fail(
      "rootdirectory",
      `must not contain empty components, got ${JSON.stringify(rootDirectory)}`,
    );
  }

  const encrypt = read.boolean("encrypt", false);
  const keyId = read.optionalString("keyid");
  const encryption = !encrypt
    ? undefined
    : keyId !== undefined
      ? ({ mode: "aws:kms", keyId } as const)
      : ({ mode: "AES256" } as const);

  const storageClassName = read.optionalString("storageclass")?.toUpperCase() ?? "STANDARD";
  if (!(STORAGE_CLASSES as readonly string[]).includes(storageClassName)) {
    throw fail(
      "storageclass",
      `must be one of ${STORAGE_CLASSES.join(", ")}, got ${JSON.stringify(read.optionalString("storageclass"))}`,
    );
  }
  const objectACLName = read.optionalString("objectacl") ?? "none";
  if (!(OBJECT_ACLS as readonly string[]).includes(objectACLName)) {
    throw fail(
      "objectacl",
      `must be one of ${OBJECT_ACLS.join(", ")}, got ${JSON.stringify(objectACLName)}`,
    );
  }

  return {
    bucket,
    region,
    regionEndpoint,
    forcePathStyle,
    credentials,
    keyPrefix: trimmedRoot === "" ? "" : `${trimmedRoot}/`,
    secure,
    skipVerify,
    encryption,
    storageClass: storageClassName === "NONE" ? undefined : (storageClassName as StorageClass),
    objectACL: objectACLName === "none" ? undefined : (objectACLName as ObjectCannedACL),
    chunkSize: read.integer("chunksize", 10 * MiB, MIN_PART_SIZE, MAX_PART_SIZE),
    multipartCopyChunkSize: read.integer(
      "multipartcopychunksize",
      32 * MiB,
      MIN_PART_SIZE,
      MAX_PART_SIZE,
    ),
    multipartCopyMaxConcurrency: read.integer("multipartcopymaxconcurrency", 100, 1),
    multipartCopyThresholdSize: read.integer(
      "multipartcopythresholdsize",
      32 * MiB,
      0,
      MAX_PART_SIZE,
    ),
    userAgent: read.optionalString("useragent"),
  };
}
