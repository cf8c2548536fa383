// Test support: a notification receiver, as a platform team would run one: an HTTP server on
// 127.0.0.1 that records every envelope posted to it. It can refuse (answer a status of the test's
// choosing) or stop and start again on the same port (the endpoint down, then back).

import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { RegistryEvent } from "../notify/index.js";

/** One request the receiver got. */
export interface ReceivedEnvelope {
  contentType: string | undefined;
  headers: IncomingMessage["headers"];
  events: RegistryEvent[];
}

export class TestReceiver {
  readonly received: ReceivedEnvelope[] = [];
  /** The status the receiver answers with; 200 accepts. */
  status = 200;
  /** How many posts it answered with a status other than 2xx. */
  refused = 0;
  private server: Server | undefined;
  private port = 0;

  /** Where to post events. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/events`;
  }

  /** The events of every accepted envelope, in the order they arrived. */
  get events(): RegistryEvent[] {
    return this.received.flatMap((envelope) => envelope.events);
  }

  /** Starts listening (again, on the same port after a stop). */
  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        if (this.status >= 200 && this.status < 300) {
          const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
            events: RegistryEvent[];
          };
          this.received.push({
            contentType: req.headers["content-type"],
            headers: req.headers,
            events: body.events,
          });
        } else {
          this.refused++;
        }
        res.writeHead(this.status).end();
      });
    });
    server.listen(this.port, "127.0.0.1");
    await once(server, "listening");
    this.port = (server.address() as { port: number }).port;
    this.server = server;
    return this;
  }

  /** Stops listening: posts are refused at the connection. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
