// Berth's side of the call stream (protocol 1.3's `Calls`): the contract's small unary calls sent
// as messages tagged with an id on one long-lived stream per driver process, their replies matched
// by id in whatever order they come. A unary gRPC call costs an HTTP/2 stream with its headers,
// metadata, deadline timer and call objects on both sides; a message on an open stream costs
// little more than its bytes (docs/driver-protocol.md, "Cost", has the figures).

import * as grpc from "@grpc/grpc-js";
import {
  fromCallError,
  type CallKind,
  type RemoteFailure,
  type WireCallError,
} from "./protocol.js";

/** Calls in flight on one stream at most; while it is full, calls take the unary rpcs. */
export const MAX_STREAM_CALLS = 64;

/**
 * A stream with no call in flight for this long is ended: an open stream keeps the process's
 * event loop alive, and a driver that is not used should not.
 */
const IDLE_MS = 1000;

/** The stream itself failed with UNIMPLEMENTED: the driver has no `Calls` (unary calls then). */
export class CallStreamUnsupported extends Error {}

interface CallReply {
  id: number;
  reply?: CallKind | "error";
  error?: WireCallError;
  [kind: string]: unknown;
}

/**
 * How a call ends: with its reply; with the driver's error answer (a RemoteFailure, for
 * fromStatus); or with an Error when the stream failed (a ServiceError, for the transport).
 */
export type CallSettle = (error: Error | RemoteFailure | null, reply?: unknown) => void;

/** One Calls stream to one driver process. */
export class CallStream {
  private readonly call: grpc.ClientDuplexStream<object, CallReply>;
  private readonly pending = new Map<number, { kind: CallKind; settle: CallSettle }>();
  private nextId = 1;
  /** Set once the stream takes no more calls: it failed, ended, or was idle and closed. */
  private done = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleSince = 0;

  constructor(
    /** The client (of one driver process) the stream runs on. */
    readonly client: grpc.Client & { Calls(): unknown },
  ) {
    const call = client.Calls() as grpc.ClientDuplexStream<object, CallReply>;
    this.call = call;
    call.on("data", (reply: CallReply) => this.settle(reply));
    call.on("error", (error: Error) => this.fail(error));
    call.on("status", (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) this.fail(new Error("the driver ended the call stream"));
    });
  }

  /** Whether the stream still takes calls (it may be full, see `full`). */
  get usable(): boolean {
    return !this.done;
  }

  /** Whether MAX_STREAM_CALLS calls are in flight. */
  get full(): boolean {
    return this.pending.size >= MAX_STREAM_CALLS;
  }

  /** Sends a call of `kind`; `settle` is called once with its outcome. Returns its id. */
  send(kind: CallKind, request: object, settle: CallSettle): number {
    const id = this.nextId++;
    this.pending.set(id, { kind, settle });
    this.call.write({ id, [kind]: request });
    return id;
  }

  /**
   * Gives up the call `id` (its caller timed out or aborted): the driver is told to cancel it and
   * its reply, if one comes, is ignored. `settle` is not called.
   */
  cancel(id: number): void {
    if (!this.pending.delete(id)) return;
    if (!this.done) this.call.write({ id, cancel: {} });
    this.becameIdle();
  }

  private settle(reply: CallReply): void {
    const call = this.pending.get(reply.id);
    if (call === undefined) return; // given up meanwhile
    this.pending.delete(reply.id);
    if (reply.reply === "error" && reply.error !== undefined) {
      call.settle(fromCallError(reply.error));
    } else if (reply.reply === call.kind) {
      call.settle(null, reply[call.kind]);
    } else {
      call.settle(new Error(`the driver answered a ${call.kind} call with ${String(reply.reply)}`));
    }
    this.becameIdle();
  }

  /** The stream broke (the process died, the client was closed) or ended: its calls fail. */
  private fail(error: Error): void {
    this.done = true;
    clearTimeout(this.idleTimer);
    const code = (error as { code?: unknown }).code;
    const failure =
      code === grpc.status.UNIMPLEMENTED
        ? new CallStreamUnsupported(`the driver has no Calls: ${error.message}`)
        : error;
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) call.settle(failure);
  }

  /** Ends the stream once it has had no call in flight for IDLE_MS. */
  private becameIdle(): void {
    if (this.pending.size > 0 || this.done) return;
    this.idleSince = performance.now();
    if (this.idleTimer === undefined) this.armIdle(IDLE_MS);
  }

  private armIdle(ms: number): void {
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.done || this.pending.size > 0) return;
      const idle = performance.now() - this.idleSince;
      if (idle < IDLE_MS) return this.armIdle(IDLE_MS - idle);
      this.done = true;
      this.call.end();
    }, ms);
    this.idleTimer.unref();
  }
}
