// `npm run torture`: the online garbage collection torture (src/testing/gc-torture.ts) for two
// minutes per backend (GC_TORTURE_SECONDS overrides). `npm test` runs a short version of it
// (gc-torture.test.ts).

import { defineTortureSuites } from "../testing/gc-torture.js";

defineTortureSuites(Number(process.env.GC_TORTURE_SECONDS ?? 120));
