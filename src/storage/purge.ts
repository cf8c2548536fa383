// Purging abandoned uploads: every `_uploads/<id>` whose `startedat` is older than the age given
// (or, without a readable `startedat`, whose directory was last modified before then).

import type { StorageContext } from "./context.js";
import { deleteIfPresent, unlessNotFound } from "./blobstore.js";
import { baseName, paths } from "./paths.js";

/** The repositories that have an `_uploads` directory. */
async function repositoriesWithUploads(context: StorageContext): Promise<string[]> {
  const root = paths.repositoriesRoot();
  const names: string[] = [];
  if ((await unlessNotFound(context.driver.stat(root))) === undefined) return names;
  await context.driver.walk(root, (info) => {
    if (!info.isDir) return "continue";
    const entry = baseName(info.path);
    if (entry === "_uploads") names.push(info.path.slice(root.length + 1, -"/_uploads".length));
    // Repository names never start with `_`; `_layers` and `_manifests` hold no uploads.
    return entry.startsWith("_") ? "skip" : "continue";
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
      context.hashStates.delete(`${repository}/${id}`);
      await deleteIfPresent(context.driver, paths.upload(repository, id));
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
