// Repository names and tags, as the OCI Distribution Spec defines them. The API layer uses the
// same expressions to answer NAME_INVALID / TAG_INVALID before any storage call.

import { RegistryError, RegistryErrorCode } from "./errors.js";

/** A repository name: `/`-separated components of lowercase alphanumerics and separators. */
export const REPOSITORY_NAME_PATTERN =
  /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;

/** A tag: up to 128 characters, not starting with `.` or `-`. */
export const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Longest repository name distribution accepts (its reference grammar's limit). */
export const MAX_REPOSITORY_NAME_LENGTH = 255;

/** True when `name` is a valid repository name. */
export function isValidRepositoryName(name: unknown): name is string {
  return (
    typeof name === "string" &&
    name.length <= MAX_REPOSITORY_NAME_LENGTH &&
    REPOSITORY_NAME_PATTERN.test(name)
  );
}

/** True when `tag` is a valid tag. */
export function isValidTag(tag: unknown): tag is string {
  return typeof tag === "string" && TAG_PATTERN.test(tag);
}

/** NAME_INVALID unless `name` is a valid repository name. */
export function checkRepositoryName(name: unknown): string {
  if (!isValidRepositoryName(name)) {
    throw new RegistryError(
      RegistryErrorCode.NameInvalid,
      `invalid repository name ${JSON.stringify(name)}`,
      { name },
    );
  }
  return name;
}

/** TAG_INVALID unless `tag` is a valid tag. */
export function checkTag(tag: unknown): string {
  if (!isValidTag(tag)) {
    throw new RegistryError(RegistryErrorCode.TagInvalid, `invalid tag ${JSON.stringify(tag)}`, {
      tag,
    });
  }
  return tag;
}
