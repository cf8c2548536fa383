// Listening on a configured address, with a failure reported as a ConfigError on its key.

import type { Server } from "node:net";
import { ConfigError } from "../config/index.js";

/** Where to listen: `addr` as written, split into host and port. */
export interface ListenAddress {
  addr: string;
  hostname: string;
  port: number;
}

/** Listens on `address`; an address in use becomes a ConfigError on `key` (http.addr...). */
export function listen(server: Server, address: ListenAddress, key: string): Promise<void> {
  const { hostname, port, addr } = address;
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const reason =
        error.code === "EADDRINUSE"
          ? "the address is in use"
          : error.code === "EADDRNOTAVAIL"
            ? "no such local address"
            : error.code === "EACCES"
              ? "permission denied"
              : error.message;
      reject(new ConfigError([{ key, message: `${key}: cannot listen on ${addr}: ${reason}` }]));
    };
    server.once("error", onError);
    server.listen({ port, host: hostname === "" ? undefined : hostname }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

/** A URL a local client reaches `server` at (an any-address listener through 127.0.0.1). */
export function localUrl(server: Server, hostname: string, scheme = "http"): string {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  const host =
    hostname === "" || hostname === "0.0.0.0" || hostname === "::"
      ? "127.0.0.1"
      : hostname.includes(":")
        ? `[${hostname}]`
        : hostname;
  return `${scheme}://${host}:${port}`;
}
