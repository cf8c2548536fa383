// Test support: the fuzz test's target process (started by fuzz-target.ts with --expose-gc). It
// serves the config given as its argument, says where over IPC, answers "memory" with its memory
// after two full collections and "stop" by closing the registry. It installs no handler for
// uncaught errors: a request that crashes Berth ends this process, and the test sees it.

import { startRegistry } from "../server/index.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("fuzz-server needs node --expose-gc");

const registry = await startRegistry({
  config: JSON.parse(process.argv[2] ?? "{}") as Record<string, unknown>,
});
process.send!({ url: registry.url, debugUrl: registry.debugUrl });

process.on("message", (message) => {
  if (message === "memory") {
    gc();
    gc();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.send!({ rss, heapUsed, external, arrayBuffers });
  } else if (message === "stop") {
    void registry.close().then(() => process.disconnect());
  }
});
process.on("disconnect", () => void registry.close());
