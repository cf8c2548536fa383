// Manifest parsing and validation, without storage: which of the four manifest kinds a document
// is, whether it is well-formed, and what it refers to. Checking that the references exist in a
// repository is the manifest store's part.

import { DIGEST_GRAMMAR, tryParseDigest } from "./digest.js";
import { RegistryError, RegistryErrorCode } from "./errors.js";
import { jsonLimitExceeded } from "./json-scan.js";
import type { Descriptor } from "./types.js";

/** The manifest media types Berth stores, and the ones it refuses by name. */
export const ManifestMediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  DockerSchema1: "application/vnd.docker.distribution.manifest.v1+json",
  DockerSchema1Signed: "application/vnd.docker.distribution.manifest.v1+prettyjws",
} as const;

/** The largest manifest accepted, as distribution limits it. */
export const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

const IMAGE_TYPES = new Set<string>([
  ManifestMediaType.OciManifest,
  ManifestMediaType.DockerManifest,
]);
const INDEX_TYPES = new Set<string>([
  ManifestMediaType.OciIndex,
  ManifestMediaType.DockerManifestList,
]);
const SCHEMA1_TYPES = new Set<string>([
  ManifestMediaType.DockerSchema1,
  ManifestMediaType.DockerSchema1Signed,
]);

/** True for the media types of manifests Berth accepts. */
export function isManifestMediaType(mediaType: string): boolean {
  return IMAGE_TYPES.has(mediaType) || INDEX_TYPES.has(mediaType);
}

/** A manifest as far as the registry cares. */
export interface ParsedManifest {
  mediaType: string;
  /** "image": config and layers; "index": child manifests. */
  kind: "image" | "index";
  config?: Descriptor;
  layers: Descriptor[];
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
  annotations?: Record<string, string>;
}

function invalid(message: string, detail?: unknown): RegistryError {
  return new RegistryError(RegistryErrorCode.ManifestInvalid, message, detail);
}

/** The media type of a Content-Type header value: parameters dropped, lower case. */
export function baseMediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function checkAnnotations(value: unknown, where: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
    throw invalid(`${where}: annotations must be an object of strings`);
  }
  return value as Record<string, string>;
}

/** A well-formed descriptor, or MANIFEST_INVALID naming `where`. */
function checkDescriptor(value: unknown, where: string, anyAlgorithm = false): Descriptor {
  if (!isObject(value)) throw invalid(`${where}: descriptor must be an object`);
  const { mediaType, digest, size, urls, artifactType } = value;
  if (typeof mediaType !== "string" || mediaType === "") {
    throw invalid(`${where}: mediaType must be a non-empty string`);
  }
  const digestOk = anyAlgorithm
    ? typeof digest === "string" && DIGEST_GRAMMAR.test(digest)
    : tryParseDigest(digest) !== undefined;
  if (!digestOk) {
    throw new RegistryError(
      RegistryErrorCode.DigestInvalid,
      `${where}: invalid digest ${JSON.stringify(digest)}`,
      { digest },
    );
  }
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw invalid(`${where}: size must be a non-negative integer, got ${JSON.stringify(size)}`);
  }
  if (urls !== undefined && (!Array.isArray(urls) || urls.some((u) => typeof u !== "string"))) {
    throw invalid(`${where}: urls must be an array of strings`);
  }
  if (artifactType !== undefined && typeof artifactType !== "string") {
    throw invalid(`${where}: artifactType must be a string`);
  }
  checkAnnotations(value.annotations, where);
  return value as Descriptor;
}

function hasUrls(descriptor: unknown): boolean {
  return isObject(descriptor) && Array.isArray(descriptor.urls) && descriptor.urls.length > 0;
}

/**
 * Parses and validates `content` declared as `declaredType` (a Content-Type; empty when the
 * client sent none). MANIFEST_INVALID for anything malformed, including schema 1.
 */
export function parseManifest(content: Buffer, declaredType: string | undefined): ParsedManifest {
  const declared = baseMediaType(declaredType);
  if (SCHEMA1_TYPES.has(declared)) throw schema1();
  // Parsing is synchronous: a document built to be costly would stall every other request.
  const exceeded = jsonLimitExceeded(content);
  if (exceeded !== undefined) throw invalid(`manifest refused: ${exceeded}`);
  let document: unknown;
  try {
    document = JSON.parse(content.toString("utf8"));
  } catch (error) {
    throw invalid(`manifest is not valid JSON: ${(error as Error).message}`);
  }
  if (!isObject(document)) throw invalid("manifest must be a JSON object");
  if (document.schemaVersion === 1) throw schema1();
  if (document.schemaVersion !== 2) {
    throw invalid(
      `unsupported schemaVersion ${JSON.stringify(document.schemaVersion)}, expected 2`,
    );
  }
  const field = document.mediaType;
  if (field !== undefined && typeof field !== "string") throw invalid("mediaType must be a string");
  if (typeof field === "string" && SCHEMA1_TYPES.has(field)) throw schema1();
  if (field !== undefined && declared !== "" && field !== declared) {
    throw invalid(`Content-Type ${declared} does not match the manifest's mediaType ${field}`, {
      contentType: declared,
      mediaType: field,
    });
  }
  // The OCI types make the mediaType field optional; then the request's type decides, and without
  // either the document's shape does.
  const mediaType =
    field ??
    (declared !== ""
      ? declared
      : "manifests" in document
        ? ManifestMediaType.OciIndex
        : ManifestMediaType.OciManifest);
  if (!isManifestMediaType(mediaType)) {
    throw invalid(`unsupported manifest media type ${JSON.stringify(mediaType)}`, { mediaType });
  }
  const isDocker = mediaType.startsWith("application/vnd.docker.");
  if (isDocker && field === undefined) throw invalid(`a ${mediaType} must have a mediaType field`);

  const artifactType = document.artifactType;
  if (artifactType !== undefined && typeof artifactType !== "string") {
    throw invalid("artifactType must be a string");
  }
  const annotations = checkAnnotations(document.annotations, "manifest");
  const subject =
    document.subject === undefined ? undefined : checkDescriptor(document.subject, "subject");

  if (INDEX_TYPES.has(mediaType)) {
    if ("config" in document || "layers" in document) {
      throw invalid(`a ${mediaType} has manifests, not config or layers`);
    }
    if (!Array.isArray(document.manifests)) throw invalid("index: manifests must be an array");
    const manifests = document.manifests.map((child, i) =>
      checkDescriptor(child, `manifests[${i}]`),
    );
    return {
      mediaType,
      kind: "index",
      layers: [],
      manifests,
      ...(subject ? { subject } : {}),
      ...(artifactType !== undefined ? { artifactType } : {}),
      ...(annotations ? { annotations } : {}),
    };
  }

  if ("manifests" in document) throw invalid(`a ${mediaType} has config and layers, not manifests`);
  const config = checkDescriptor(document.config, "config");
  if (!Array.isArray(document.layers)) throw invalid("manifest: layers must be an array");
  const layers = document.layers.map((layer, i) =>
    checkDescriptor(layer, `layers[${i}]`, hasUrls(layer)),
  );
  return {
    mediaType,
    kind: "image",
    config,
    layers,
    manifests: [],
    ...(subject ? { subject } : {}),
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(annotations ? { annotations } : {}),
  };
}

function schema1(): RegistryError {
  return invalid("Docker schema 1 manifests are not supported: push a schema 2 or OCI manifest", {
    schemaVersion: 1,
  });
}

/** The media type a stored manifest's bytes declare (for serving it), as parseManifest decides. */
export function storedMediaType(content: Buffer): string {
  try {
    const document = JSON.parse(content.toString("utf8")) as Record<string, unknown>;
    if (typeof document.mediaType === "string") return document.mediaType;
    // Schema 1, in roots distribution wrote long ago: served as it was stored.
    if (document.schemaVersion === 1) {
      return "signatures" in document
        ? ManifestMediaType.DockerSchema1Signed
        : ManifestMediaType.DockerSchema1;
    }
    return "manifests" in document ? ManifestMediaType.OciIndex : ManifestMediaType.OciManifest;
  } catch {
    return ManifestMediaType.OciManifest;
  }
}

/** The descriptor the referrers API lists for a manifest with a subject. */
export function referrerDescriptor(
  manifest: ParsedManifest,
  digest: string,
  size: number,
): Descriptor {
  const artifactType = manifest.artifactType ?? manifest.config?.mediaType;
  return {
    mediaType: manifest.mediaType,
    digest,
    size,
    ...(artifactType !== undefined ? { artifactType } : {}),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
}

/** What a stored manifest refers to, read leniently (any schema, even one Berth refuses). */
export interface ManifestReferences {
  /** Config, layers (and schema 1 `fsLayers`): blobs. */
  blobs: string[];
  /** Child manifests of an index or manifest list. */
  children: string[];
  subject?: string;
}

/**
 * The references in stored manifest bytes, for garbage collection: it must never miss one, so it
 * reads every shape distribution ever stored (schema 1 included). Undefined when not JSON.
 */
export function referencesOf(content: Buffer): ManifestReferences | undefined {
  let document: unknown;
  try {
    document = JSON.parse(content.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!isObject(document)) return undefined;
  const digests = (list: unknown, field = "digest"): string[] =>
    Array.isArray(list)
      ? list.flatMap((item) =>
          isObject(item) && typeof item[field] === "string" ? [item[field]] : [],
        )
      : [];
  const config =
    isObject(document.config) && typeof document.config.digest === "string"
      ? [document.config.digest]
      : [];
  const subject =
    isObject(document.subject) && typeof document.subject.digest === "string"
      ? document.subject.digest
      : undefined;
  return {
    blobs: [...config, ...digests(document.layers), ...digests(document.fsLayers, "blobSum")],
    children: digests(document.manifests),
    ...(subject !== undefined ? { subject } : {}),
  };
}
