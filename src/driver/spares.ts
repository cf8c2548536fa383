// The buffers the drivers keep between transfers for reuse: the filesystem's copy buffers
// (./copy.ts) and the large writers' batches (./append.ts). An idle server lets go of them
// (server/idle-gc.ts) so that its memory goes back down after a burst; a busy one lets go of one
// kind once the other took over, so that a push's batches are not held through the pulls that
// follow it (skopeo pushes an image's layers, then pulls them at once), nor pulls' copy buffers
// through a push.

import { batchesLastUsedAt, dropSpareBatches } from "./append.js";
import { copyBuffersLastUsedAt, dropSpareCopyBuffers } from "./copy.js";

/**
 * After a kind's spares were let go of while busy, the next such drop of that kind waits this
 * long. Each drop costs a full collection and the next transfer's allocations; where pushes and
 * pulls run at once (zb's 75% pull / 25% push mixes) a push's batches fell unused for 50 ms
 * between pushes again and again: ~25% more server CPU at c=10, 10-15% at c=50
 * (docs/performance.md, "A push's spare batches at the pull after it"). Per kind, so a push's
 * drop of the pulls' buffers does not hold back the drop of its own batches at the pull after it.
 */
export const BUSY_DROP_INTERVAL_MS = 2000;
let batchesDroppedAt = Number.NEGATIVE_INFINITY;
let copiesDroppedAt = Number.NEGATIVE_INFINITY;

/**
 * Lets go of every spare buffer (`unusedForMs` 0, the default), or of the spares of one kind only
 * when no transfer used that kind for `unusedForMs` while one used the other kind within that
 * time (a push's batches while pulls run, or the other way round), and that kind's last such drop
 * is `intervalMs` ago. A kind unused while the other is too (a push's pause between two layers, a
 * flood of small requests) keeps its spares: only the transfers of the other kind show that this
 * one is over. The next transfer allocates anew. Returns the bytes let go of.
 */
export function dropSpareBuffers(unusedForMs = 0, intervalMs = BUSY_DROP_INTERVAL_MS): number {
  if (unusedForMs === 0) return dropSpareCopyBuffers() + dropSpareBatches();
  const now = performance.now();
  const batchesUnused = now - batchesLastUsedAt() >= unusedForMs;
  const copiesUnused = now - copyBuffersLastUsedAt() >= unusedForMs;
  if (batchesUnused && !copiesUnused && now - batchesDroppedAt >= intervalMs) {
    const bytes = dropSpareBatches();
    if (bytes > 0) batchesDroppedAt = now;
    return bytes;
  }
  if (copiesUnused && !batchesUnused && now - copiesDroppedAt >= intervalMs) {
    const bytes = dropSpareCopyBuffers();
    if (bytes > 0) copiesDroppedAt = now;
    return bytes;
  }
  return 0;
}
