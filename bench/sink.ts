// A stand-in registry inside the bench's own process that takes monolithic blob pushes and keeps
// nothing. The bench pushes to it before it times a registry's first pushes, so that its own client
// code is compiled and tiered up by then. Without it the registry timed first (Berth, in a fresh
// run of `--only push-small`) shares the machine's two cores with a client that is cold too, and
// the registry timed second does not (docs/performance.md, "The bench's client, warm before the
// cold row").

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** Answers POST with an upload location and PUT with 201, draining bodies; anything else is 404. */
function answer(request: IncomingMessage, response: ServerResponse, uploads: { next: number }) {
  request.resume();
  request.once("end", () => {
    const url = request.url ?? "";
    if (request.method === "POST" && url.endsWith("/blobs/uploads/")) {
      uploads.next += 1;
      response.writeHead(202, {
        location: `${url}${uploads.next}`,
        "content-length": 0,
      });
    } else if (request.method === "PUT" && url.includes("/blobs/uploads/")) {
      const digest = new URL(url, "http://sink").searchParams.get("digest") ?? "";
      response.writeHead(201, { "docker-content-digest": digest, "content-length": 0 });
    } else {
      response.writeHead(404, { "content-length": 0 });
    }
    response.end();
  });
}

/** A sink on a free port of 127.0.0.1, and how to stop it. */
export async function startSink(): Promise<{ url: string; stop: () => Promise<void> }> {
  const uploads = { next: 0 };
  const server = createServer((request, response) => answer(request, response, uploads));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
