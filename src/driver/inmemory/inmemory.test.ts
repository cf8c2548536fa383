// The inmemory driver runs the shared driver suite twice: constructed directly (the suite wraps it
// in the base wrapper itself) and through the factory, as the registry creates it.

import { createDriver } from "../factory.js";
import { runDriverSuite } from "../testsuite/index.js";
import { InMemoryDriver } from "./index.js";

// Its modification times are JavaScript Dates: millisecond steps.
const options = { contentInMemory: true, modTimeResolutionMs: 5 };

runDriverSuite("inmemory (constructed directly)", () => new InMemoryDriver(), {
  ...options,
  largeSize: 16 * 1024 * 1024,
});

runDriverSuite("inmemory (from the factory)", () => createDriver("inmemory"), options);
