// Manifest endpoints: GET, HEAD, PUT and DELETE `/v2/<name>/manifests/<reference>`, where the
// reference is a tag or a digest. GET serves the stored bytes with their stored media type; Accept
// negotiation follows distribution: a client that lists manifest types but not the OCI type of
// the stored manifest gets 404, and a client asking by tag for a manifest list it does not accept
// (but accepting Docker schema 2) gets the linux/amd64 image manifest from the list.

import {
  isManifestMediaType,
  isValidTag,
  ManifestMediaType,
  MAX_MANIFEST_SIZE,
  type RepositoryManifests,
  type RepositoryTags,
  type StoredManifest,
} from "../storage/index.js";
import { matchesEtag } from "./blobs.js";
import type { ApiContext, ApiRequest } from "./context.js";
import { sendEmpty } from "./context.js";
import { ApiError } from "./errors.js";
import { deleteEvent, manifestEvent } from "./events.js";
import { acceptedMediaTypes, checkDigest, isDigestReference, readBody } from "./protocol.js";

function manifestUnknown(reference: string): ApiError {
  return new ApiError("MANIFEST_UNKNOWN", `manifest unknown: ${JSON.stringify(reference)}`);
}

/** GET and HEAD: the manifest's bytes, Content-Type, Docker-Content-Digest and ETag. */
export async function getManifest(context: ApiContext, request: ApiRequest): Promise<void> {
  const { req, res, route } = request;
  const reference = route.argument;
  const repository = context.storage.repository(route.name);
  let digest: string;
  const byTag = !isDigestReference(reference);
  if (byTag) {
    // A reference that is not a valid tag cannot name anything here: unknown, as distribution's
    // router answers it (the conformance suite asks for `.INVALID_MANIFEST_NAME` and wants 404).
    if (!isValidTag(reference)) throw manifestUnknown(reference);
    digest = await repository.tags.resolve(reference);
  } else {
    checkDigest(reference);
    digest = reference;
  }

  const etag = `"${digest}"`;
  if (matchesEtag(req.headers["if-none-match"], etag)) {
    res.writeHead(304, { "Docker-Content-Digest": digest, ETag: etag });
    res.end();
    return;
  }

  const { manifests } = repository;
  let manifest = manifests.getCached?.(digest) ?? (await manifests.get(digest));
  const accept = req.headers.accept;
  // Clients list the stored type almost always; parse the list only when they do not.
  if (accept !== undefined && !accept.includes(manifest.mediaType)) {
    manifest = await negotiate(manifest, acceptedMediaTypes(req), byTag, manifests);
  }
  res.writeHead(200, {
    "Content-Type": manifest.mediaType,
    "Content-Length": manifest.content.length,
    "Docker-Content-Digest": manifest.digest,
    ETag: manifest.digest === digest ? etag : `"${manifest.digest}"`,
  });
  res.end(request.isHead ? undefined : manifest.content);
  manifestEvent(context, request, "pull", manifest, byTag ? reference : undefined);
  if (!request.isHead) context.recordPull?.(route.name, digest, byTag ? reference : undefined);
}

/**
 * Applies the client's Accept list to a stored manifest. Clients that name no manifest type at all
 * (curl, `*\/*`) get what is stored.
 */
async function negotiate(
  manifest: StoredManifest,
  accepted: Set<string>,
  byTag: boolean,
  manifests: RepositoryManifests,
): Promise<StoredManifest> {
  if (accepted.has(manifest.mediaType)) return manifest;
  if (![...accepted].some(isManifestMediaType)) return manifest;
  switch (manifest.mediaType) {
    case ManifestMediaType.OciManifest:
      throw new ApiError(
        "MANIFEST_UNKNOWN",
        "OCI manifest found, but the Accept header does not support OCI manifests",
      );
    case ManifestMediaType.OciIndex:
      throw new ApiError(
        "MANIFEST_UNKNOWN",
        "OCI index found, but the Accept header does not support OCI indexes",
      );
    case ManifestMediaType.DockerManifestList:
      if (byTag && accepted.has(ManifestMediaType.DockerManifest))
        return defaultPlatformManifest(manifest, manifests);
      return manifest;
    default:
      return manifest;
  }
}

/** The linux/amd64 entry of a manifest list, for clients that cannot read lists. */
async function defaultPlatformManifest(
  list: StoredManifest,
  manifests: RepositoryManifests,
): Promise<StoredManifest> {
  const parsed = JSON.parse(list.content.toString("utf8")) as {
    manifests?: { digest?: string; platform?: { os?: string; architecture?: string } }[];
  };
  const entry = parsed.manifests?.find(
    (candidate) =>
      candidate.platform?.os === "linux" && candidate.platform.architecture === "amd64",
  );
  if (entry?.digest === undefined) {
    throw new ApiError(
      "MANIFEST_UNKNOWN",
      "manifest list has no linux/amd64 manifest and the client does not accept manifest lists",
    );
  }
  return manifests.get(entry.digest);
}

/** PUT: validates and stores the manifest, tags it when the reference is a tag (201). */
export async function putManifest(context: ApiContext, request: ApiRequest): Promise<void> {
  const { req, res, route } = request;
  const reference = route.argument;
  const repository = context.storage.repository(route.name);
  const byDigest = isDigestReference(reference);
  if (byDigest) checkDigest(reference);
  else if (!isValidTag(reference)) {
    throw new ApiError("TAG_INVALID", `invalid tag: ${JSON.stringify(reference)}`);
  }
  const content = await readBody(req, MAX_MANIFEST_SIZE);
  const result = await repository.manifests.put(
    content,
    req.headers["content-type"] ?? "",
    byDigest ? { expectedDigest: reference } : { tag: reference },
  );
  const headers: Record<string, string> = {
    Location: `${context.prefix}/v2/${route.name}/manifests/${result.digest}`,
    "Docker-Content-Digest": result.digest,
  };
  if (result.subject !== undefined) headers["OCI-Subject"] = result.subject;
  sendEmpty(res, 201, headers);
  manifestEvent(
    context,
    request,
    "push",
    { digest: result.digest, mediaType: result.mediaType, content },
    byDigest ? undefined : reference,
  );
}

/**
 * DELETE: by digest removes the manifest revision and its tags; by tag removes only the tag (202).
 * Both are UNSUPPORTED (405) unless deleting is enabled.
 */
export async function deleteManifest(context: ApiContext, request: ApiRequest): Promise<void> {
  const { res, route } = request;
  const reference = route.argument;
  const repository = context.storage.repository(route.name);
  if (isDigestReference(reference)) {
    checkDigest(reference);
    await repository.manifests.delete(reference);
  } else {
    await untag(repository.tags, reference);
  }
  sendEmpty(res, 202, {});
  deleteEvent(
    context,
    request,
    isDigestReference(reference) ? { digest: reference } : { tag: reference },
  );
}

async function untag(tags: RepositoryTags, tag: string): Promise<void> {
  if (!isValidTag(tag)) throw manifestUnknown(tag);
  await tags.untag(tag);
}
