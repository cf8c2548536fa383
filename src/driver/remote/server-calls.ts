// The server side of the contract's unary calls: each as its own rpc (GetContent, Stat, ...) and,
// since protocol 1.3, as messages on the call stream (`Calls`), where they run concurrently and
// are answered, tagged with their id, as they finish.

import * as grpc from "@grpc/grpc-js";
import { UnsupportedMethodError } from "../driver.js";
import type { CallMessage } from "./call-codec.js";
import {
  CALL_BATCH_MINOR,
  CALL_KINDS,
  PROTOCOL_METADATA,
  speaksMinor,
  toCallError,
  toStatus,
  type CallKind,
} from "./protocol.js";

/** One of the contract's unary calls as served: its request and signal to its reply. */
export type Operation = (request: never, signal: AbortSignal) => Promise<object>;

/** Every unary call of the service, by its kind on the call stream. */
export type Operations = Record<CallKind, Operation>;

/** A request on the call stream, as call-codec.ts reads it. */
export type CallRequest = CallMessage<CallKind | "cancel">;

/** The calls of the contract that take a signal (CallOptions). */
const SIGNALLED = new Set<string>(["list", "move", "delete", "write"]);

/** The signal of the calls that take none: never aborted. */
const NEVER = new AbortController().signal;

/** An AbortSignal aborted when the client cancels `call`. */
export function cancelledSignal(call: {
  on(event: "cancelled", fn: () => void): unknown;
}): AbortSignal {
  const controller = new AbortController();
  call.on("cancelled", () => controller.abort(new Error("the client cancelled the call")));
  return controller.signal;
}

/** A unary handler running `run` with the request and the call's signal. */
export function unary<Request, Reply>(
  run: (request: Request, signal: AbortSignal) => Promise<Reply>,
): grpc.handleUnaryCall<Request, Reply> {
  return (call, callback) => {
    run(call.request, cancelledSignal(call)).then(
      (reply) => callback(null, reply),
      (error: unknown) => callback(toStatus(error) as grpc.ServiceError),
    );
  };
}

/** The unary rpcs of `operations` (GetContent, ...), for addService. */
export function unaryHandlers(operations: Operations): grpc.UntypedServiceImplementation {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [rpc, kind] of Object.entries(CALL_KINDS)) {
    handlers[rpc] = unary(
      operations[kind] as (request: unknown, signal: AbortSignal) => Promise<object>,
    );
  }
  return handlers;
}

/**
 * One call stream: every call runs at once with a signal of its own (aborted by its `cancel`,
 * or when the stream is cancelled), and its reply or error is written as it finishes. When the
 * client half-closes, the stream ends once the calls in flight have answered.
 */
export function serveCalls(
  driverName: string,
  operations: Operations,
  call: grpc.ServerDuplexStream<CallRequest, CallMessage<CallKind | "error">>,
): void {
  /** The signals of the calls in flight that take one, by id. */
  const signals = new Map<number, AbortController>();
  let running = 0;
  let ending = false;
  let cancelled = false;
  // Berth 1.5 or later reads batches: replies ready in the same round go as one message.
  const peer = call.metadata.get(PROTOCOL_METADATA)[0];
  const batches = typeof peer === "string" && speaksMinor(peer, CALL_BATCH_MINOR);
  let queue: CallMessage<CallKind | "error">[] = [];
  const flush = () => {
    const [first, ...rest] = queue;
    queue = [];
    if (first === undefined || cancelled) return;
    if (rest.length > 0) first.batch = rest;
    call.write(first);
    if (ending && running === 0) call.end();
  };
  const answer = (reply: CallMessage<CallKind | "error">) => {
    if (cancelled) return;
    if (!batches) {
      call.write(reply);
      if (ending && running === 0) call.end();
      return;
    }
    queue.push(reply);
    if (queue.length === 1) setImmediate(flush);
  };
  /** Runs one call and answers it: one promise per call, no closures. */
  const run = async (id: number, kind: CallKind, body: unknown, signal: AbortSignal) => {
    let reply: CallMessage<CallKind | "error">;
    try {
      const operation = operations[kind] as Operation | undefined;
      if (operation === undefined) throw new UnsupportedMethodError(driverName, `call ${kind}`);
      reply = {
        id,
        kind,
        body: (await operation(body as never, signal)) as Record<string, unknown>,
      };
    } catch (error) {
      reply = { id, kind: "error", body: toCallError(error) as unknown as Record<string, unknown> };
    }
    if (signal !== NEVER) signals.delete(id);
    running--;
    answer(reply);
  };
  const start = (request: CallRequest) => {
    const { id, kind } = request;
    if (kind === "cancel") {
      signals.get(id)?.abort(new Error("the client cancelled the call"));
      return;
    }
    running++;
    if (kind === undefined) {
      void run(id, "unknown" as CallKind, undefined, NEVER);
      return;
    }
    // Only the calls that take a signal get one (an AbortController costs, measured, about a
    // tenth of the driver's CPU per call); the others cannot be cancelled halfway anyway.
    let signal = NEVER;
    if (SIGNALLED.has(kind)) {
      const controller = new AbortController();
      signals.set(id, controller);
      signal = controller.signal;
    }
    void run(id, kind, request.body, signal);
  };
  call.on("data", (request: CallRequest) => {
    start(request);
    if (request.batch !== undefined) for (const entry of request.batch) start(entry);
  });
  call.on("end", () => {
    ending = true;
    if (running === 0 && queue.length === 0 && !cancelled) call.end();
  });
  call.on("cancelled", () => {
    cancelled = true;
    for (const controller of signals.values()) {
      controller.abort(new Error("the client cancelled the call"));
    }
  });
  call.on("error", () => {});
}
