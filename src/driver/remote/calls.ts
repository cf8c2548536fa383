// Berth's side of the call stream (protocol 1.3's `Calls`): the contract's small unary calls sent
// as messages tagged with an id on one long-lived stream per driver process, their replies matched
// by id in whatever order they come. A unary gRPC call costs an HTTP/2 stream with its headers,
// metadata, deadline timer and call objects on both sides; a message on an open stream costs
// little more than its bytes (docs/driver-protocol.md, "Cost", has the figures).

import * as grpc from "@grpc/grpc-js";
import type { CallMessage, OutgoingCall } from "./call-codec.js";
import {
  PROTOCOL_METADATA,
  PROTOCOL_VERSION,
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

/** A call was not answered within the stream's deadline (the driver was told to cancel it). */
export class CallTimedOut extends Error {}

/**
 * How a call ends: with its reply; with the driver's error answer (a RemoteFailure, for
 * fromStatus); with a CallTimedOut; or with an Error when the stream failed (a ServiceError, for
 * the transport).
 */
export type CallSettle = (error: Error | RemoteFailure | null, reply?: unknown) => void;

interface Pending {
  kind: CallKind;
  settle: CallSettle;
  /** When it times out (performance.now()). */
  deadline: number;
}

/**
 * One Calls stream to one driver process. Every call has the same deadline, so the oldest call in
 * flight times out first: one timer, armed for it, stands for every call's (a timer per call cost
 * a setTimeout and a clearTimeout each).
 */
export class CallStream {
  private readonly call: grpc.ClientDuplexStream<OutgoingCall, CallMessage<CallKind | "error">>;
  /** The calls in flight by id, oldest first (ids only grow). */
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Set once the stream takes no more calls: it failed, ended, or was idle and closed. */
  private done = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private idleSince = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    /** The client (of one driver process) the stream runs on. */
    readonly client: grpc.Client & { Calls(metadata?: grpc.Metadata): unknown },
    /** How long a call may go unanswered. */
    private readonly timeoutMs: number,
    /** Whether the driver reads batches (1.5): calls ready at once then go in one message. */
    private readonly batches = false,
  ) {
    const metadata = new grpc.Metadata();
    metadata.set(PROTOCOL_METADATA, PROTOCOL_VERSION);
    const call = client.Calls(metadata) as grpc.ClientDuplexStream<
      OutgoingCall,
      CallMessage<CallKind | "error">
    >;
    this.call = call;
    call.on("data", (reply: CallMessage<CallKind | "error">) => this.settle(reply));
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

  /**
   * Sends a call of `kind`; `settle` is called once with its outcome (a CallTimedOut when it was
   * not answered in time). Returns its id.
   */
  send(kind: CallKind, request: object, settle: CallSettle): number {
    const id = this.nextId++;
    this.pending.set(id, { kind, settle, deadline: performance.now() + this.timeoutMs });
    this.write({ id, kind, body: request });
    if (this.deadlineTimer === undefined) this.armDeadline();
    return id;
  }

  /**
   * Gives up the call `id` (its caller aborted): the driver is told to cancel it and its reply,
   * if one comes, is ignored. `settle` is not called.
   */
  cancel(id: number): void {
    if (!this.pending.delete(id)) return;
    if (!this.done) this.write({ id, kind: "cancel", body: {} });
    this.becameIdle();
  }

  /** Calls waiting to go in one message (with `batches`), sent when the current I/O round ends. */
  private queue: OutgoingCall[] = [];

  /**
   * Writes `message`; with `batches`, the messages written until the event loop's check phase
   * go together as one (a message costs each side's gRPC far more than its bytes: measured, in
   * docs/driver-protocol.md, "Cost").
   */
  private write(message: OutgoingCall): void {
    if (!this.batches) {
      this.call.write(message);
      return;
    }
    this.queue.push(message);
    if (this.queue.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const [first, ...rest] = this.queue;
    this.queue = [];
    if (first === undefined || this.done) return;
    if (rest.length > 0) first.batch = rest;
    this.call.write(first);
  }

  /** Settles the call a reply answers, then those of the replies batched with it. */
  private settle(reply: CallMessage<CallKind | "error">): void {
    this.settleOne(reply);
    if (reply.batch !== undefined) for (const entry of reply.batch) this.settleOne(entry);
  }

  private settleOne(reply: CallMessage<CallKind | "error">): void {
    const call = this.pending.get(reply.id);
    if (call === undefined) return; // given up meanwhile
    this.pending.delete(reply.id);
    if (reply.kind === "error") {
      call.settle(fromCallError(reply.body as unknown as WireCallError));
    } else if (reply.kind === call.kind) {
      call.settle(null, reply.body);
    } else {
      call.settle(new Error(`the driver answered a ${call.kind} call with ${String(reply.kind)}`));
    }
    this.becameIdle();
  }

  /** Arms the deadline timer for the oldest call in flight, if any. */
  private armDeadline(): void {
    const oldest = this.pending.values().next();
    if (oldest.done === true || this.done) return;
    const wait = Math.max(0, oldest.value.deadline - performance.now());
    this.deadlineTimer = setTimeout(() => this.expire(), Math.ceil(wait));
    // Armed until it fires even when its call was answered: it must not keep the process alive.
    this.deadlineTimer.unref();
  }

  /** Times out the calls whose deadline passed (the oldest ones), then waits for the next. */
  private expire(): void {
    this.deadlineTimer = undefined;
    const now = performance.now();
    for (const [id, call] of this.pending) {
      if (call.deadline > now) break;
      this.cancel(id);
      call.settle(new CallTimedOut(`no answer within ${this.timeoutMs} ms`));
    }
    this.armDeadline();
  }

  /** The stream broke (the process died, the client was closed) or ended: its calls fail. */
  private fail(error: Error): void {
    this.done = true;
    clearTimeout(this.idleTimer);
    clearTimeout(this.deadlineTimer);
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
      clearTimeout(this.deadlineTimer);
      this.call.end();
    }, ms);
    this.idleTimer.unref();
  }
}
