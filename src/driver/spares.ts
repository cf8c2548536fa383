// The buffers the drivers keep between transfers for reuse: the filesystem's copy buffers
// (./copy.ts) and the large writers' batches (./append.ts). An idle server lets go of them
// (server/idle-gc.ts) so that its memory goes back down after a burst.

import { dropSpareBatches } from "./append.js";
import { dropSpareCopyBuffers } from "./copy.js";

/** Lets go of every spare buffer (the next transfer allocates anew); returns their bytes. */
export function dropSpareBuffers(): number {
  return dropSpareCopyBuffers() + dropSpareBatches();
}
