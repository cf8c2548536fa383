// The HTTP agent of the s3 driver's plain-HTTP endpoints: keep-alive sockets that read into one
// buffer each, reused for every read, instead of a fresh 64 KiB buffer per read.
//
// Why (measured on this 2-core machine, 1 GiB GET from Ceph RGW, docs/performance.md): Node's
// HTTP client with its default sockets spent 7.5-10.5 s of CPU per GiB, more than half of it in
// the kernel: each socket read allocates a fresh buffer, and the HTTP parser copies the body out
// of it into another; the garbage collector frees them in bursts of tens of MiB, glibc hands the
// top of its heap back to the kernel each time, and the next reads fault it in again (270-350
// thousand page faults per GiB). With the socket's read buffer reused, only the parser's copy is
// allocated: 1.8-2.3 s of CPU and 27-51 thousand page faults per GiB.
//
// How: a socket created with `onread` reads into the given buffer and hands each read to a
// callback instead of emitting "data"; the callback emits "data" with a view of the bytes read,
// which is what Node's HTTP client listens to. The view is valid only during the call: the client's
// parser takes headers as strings and copies each body chunk (node_http_parser's on_body), so
// nothing keeps it (agent.test.ts; on the gateway, s3.test.ts compares chunks held across parts).
// HTTPS endpoints keep Node's default sockets (TLS decrypts into buffers of its own).

import { Agent, type ClientRequestArgs } from "node:http";
import { createConnection, type NetConnectOpts, type Socket } from "node:net";

/** Bytes each socket reads at most per read, unless told otherwise: Node's own default read size. */
const READ_BUFFER_BYTES = 64 * 1024;

/**
 * A connection that reads into one buffer of its own (`readBytes` long), reused for every read,
 * and hands each read on as a "data" event of a view of that buffer: valid only during the event
 * (whatever keeps a chunk copies it). The socket keeps reading until it is paused.
 */
export function connectReadingIntoOwnBuffer(
  options: NetConnectOpts,
  readBytes = READ_BUFFER_BYTES,
): Socket {
  const buffer = Buffer.allocUnsafeSlow(readBytes);
  const socket: Socket = createConnection({
    ...options,
    onread: {
      buffer,
      callback: (bytes: number) => {
        socket.emit("data", buffer.subarray(0, bytes));
        return true;
      },
    },
  });
  return socket;
}

/** A keep-alive agent whose sockets read into one reused buffer each. */
export class ReusedBufferAgent extends Agent {
  override createConnection(options: ClientRequestArgs): Socket {
    // The HTTP client pauses the socket itself when its reader is full.
    return connectReadingIntoOwnBuffer(options as NetConnectOpts);
  }
}
