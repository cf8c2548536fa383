// Purging abandoned uploads: every `_uploads/<id>` whose `startedat` is older than the age given
// (or, without a readable `startedat`, whose directory was last modified before then).

import type { StorageContext } from "./context.js";
import { deleteIfPresent, unlessNotFound } from "./blobstore.js";
import { baseName, isLayoutEntry, parseUploadsPath, paths } from "./paths.js";

/** The repositories that have an `_uploads` directory. */
async function repositoriesWithUploads(context: StorageContext): Promise<string[]> {
  const root = paths.repositoriesRoot();
  const names: string[] = [];
  if ((await unlessNotFound(context.driver.stat(root))) === undefined) return names;
  await context.driver.walk(root, (info) => {
    if (!info.isDir) return "continue";
    const repository = parseUploadsPath(info.path);
    if (repository !== undefined) names.push(repository);
    // Nothing below `_uploads`, `_layers` or `_manifests` is another repository's `_uploads`.
    return isLayoutEntry(baseName(info.path)) ? "skip" : "continue";
  });
  return names;
}

export async function purgeUploads(
  context: StorageContext,
  olderThanMs: number,
  dryRun = false,
): Promise<string[]> {
  if (!dryRun) context.checkWritable();
  const cutoff = Date.now() - olderThanMs;
  const purged: string[] = [];
  for (const repository of await repositoriesWithUploads(context)) {
    const uploads = (await unlessNotFound(context.driver.list(paths.uploads(repository)))) ?? [];
    for (const id of uploads.map(baseName)) {
      if (!(await isOlder(context, repository, id, cutoff))) continue;
      purged.push(id);
      if (dryRun) continue;
      const upload = paths.upload(repository, id);
      context.hashStates.delete(upload);
      await deleteIfPresent(context.driver, upload);
    }
  }
  return purged;
}

async function isOlder(
  context: StorageContext,
  repository: string,
  id: string,
  cutoff: number,
): Promise<boolean> {
  const startedAt = await unlessNotFound(
    context.driver.getContent(paths.uploadStartedAt(repository, id)),
  );
  const time =
    startedAt === undefined ? NaN : Date.parse(Buffer.from(startedAt).toString("utf8").trim());
  if (!Number.isNaN(time)) return time < cutoff;
  const info = await unlessNotFound(context.driver.stat(paths.upload(repository, id)));
  return info !== undefined && info.modTime.getTime() < cutoff;
}
