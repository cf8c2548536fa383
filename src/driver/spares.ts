// The buffers the drivers keep between transfers for reuse: the filesystem's copy buffers
// (./copy.ts) and the large writers' batches (./append.ts). An idle server lets go of them
// (server/idle-gc.ts) so that its memory goes back down after a burst; a busy one lets go of one
// kind once the other took over, so that a push's batches are not held through the pulls that
// follow it (skopeo pushes an image's layers, then pulls them at once), nor pulls' copy buffers
// through a push.

import { batchesLastUsedAt, dropSpareBatches } from "./append.js";
import { copyBuffersLastUsedAt, dropSpareCopyBuffers } from "./copy.js";

/**
 * Lets go of every spare buffer (`unusedForMs` 0, the default), or of the spares of one kind only
 * when no transfer used that kind for `unusedForMs` while one used the other kind within that
 * time (a push's batches while pulls run, or the other way round). A kind unused while the other
 * is too (a push's pause between two layers, a flood of small requests) keeps its spares: only
 * the transfers of the other kind show that this one is over. The next transfer allocates anew.
 * Returns the bytes let go of.
 */
export function dropSpareBuffers(unusedForMs = 0): number {
  if (unusedForMs === 0) return dropSpareCopyBuffers() + dropSpareBatches();
  const now = performance.now();
  const batchesUnused = now - batchesLastUsedAt() >= unusedForMs;
  const copiesUnused = now - copyBuffersLastUsedAt() >= unusedForMs;
  if (batchesUnused && !copiesUnused) return dropSpareBatches();
  if (copiesUnused && !batchesUnused) return dropSpareCopyBuffers();
  return 0;
}
