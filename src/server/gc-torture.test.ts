// The online garbage collection torture (src/testing/gc-torture.ts), bounded for `npm test`: 15 s
// of pushes per backend, on the filesystem and on three replicas sharing Ceph RGW and Redis.
// `npm run torture` runs the long version; GC_TORTURE_SECONDS overrides both.

import { defineTortureSuites } from "../testing/gc-torture.js";

defineTortureSuites(Number(process.env.GC_TORTURE_SECONDS ?? 15));
