// OpenTelemetry tracing, off unless the standard OTEL_* environment variables ask for it (as
// distribution 3.x is configured, though distribution exports by default and Berth does not):
// a server span per request, continuing the caller's trace from its W3C `traceparent`, and a
// child span per storage driver call made while serving it. Off, nothing is loaded and the request
// path and DriverBase each test one `undefined`; see docs/operations.md for the figures.
//
// On when OTEL_TRACES_EXPORTER names an exporter other than `none` (`otlp`, `console`), or when
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (OTLP then); never with
// OTEL_SDK_DISABLED=true. The SDK reads the rest itself: OTEL_EXPORTER_OTLP_*_ENDPOINT, _HEADERS,
// _PROTOCOL (http/protobuf, the default, or http/json), OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_PROPAGATORS, OTEL_BSP_*.

import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, Tracer } from "@opentelemetry/api";
import { PathNotFoundError, type DriverBase, type DriverCallTracer } from "../driver/index.js";

/** The environment tracing is configured from (process.env, or a test's own). */
export type TracingEnvironment = Record<string, string | undefined>;

/** distribution's attribute prefix (tracing.AttributePrefix). */
const PREFIX = "io.cncf.distribution.";

/** Writer calls made once per chunk are not traced: a push would make thousands of spans. */
const untraced = new Set(["writer.write"]);

/** What the request path needs of tracing once it is on. */
export interface Tracing {
  /**
   * Starts the server span of a request (a child of its `traceparent`, if any) and ends it when
   * the response closes; returns the context to serve the request in. `describe` is called at the
   * end for the route and repository.
   */
  startRequest(
    req: IncomingMessage,
    res: ServerResponse,
    describe: () => { handler?: string; repository?: string; requestId: string },
  ): Context;
  /** Serves `fn` in `active` (the request's span is then the parent of the driver calls' spans). */
  within<T>(active: Context, fn: () => T): T;
  /** Makes `driver` trace its calls made inside a request's span. */
  traceDriver(driver: DriverBase): void;
  /** Exports the spans ended so far. */
  flush(): Promise<void>;
}

/** Which exporter the environment asks for; undefined when tracing stays off. */
export function tracingExporter(env: TracingEnvironment): "otlp" | "console" | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return undefined;
  const named = env.OTEL_TRACES_EXPORTER?.split(",").map((name) => name.trim().toLowerCase());
  if (named !== undefined && named.length > 0 && named[0] !== "") {
    if (named.includes("none")) return undefined;
    if (named.includes("otlp")) return "otlp";
    if (named.includes("console")) return "console";
    throw new Error(
      `OTEL_TRACES_EXPORTER=${env.OTEL_TRACES_EXPORTER}: Berth exports traces with otlp or console`,
    );
  }
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT) return "otlp";
  return undefined;
}

let started: Promise<{ tracer: Tracer; flush: () => Promise<void> }> | undefined;

/** Registers the SDK once per process: a provider, its exporter and W3C propagation. */
async function startSdk(
  exporter: "otlp" | "console",
  env: TracingEnvironment,
): Promise<{ tracer: Tracer; flush: () => Promise<void> }> {
  const { NodeTracerProvider, BatchSpanProcessor, ConsoleSpanExporter } =
    await import("@opentelemetry/sdk-trace-node");
  const { detectResources, envDetector, resourceFromAttributes } =
    await import("@opentelemetry/resources");
  const { W3CTraceContextPropagator, W3CBaggagePropagator, CompositePropagator } =
    await import("@opentelemetry/core");
  let spanExporter;
  if (exporter === "console") {
    spanExporter = new ConsoleSpanExporter();
  } else {
    const protocol = (
      env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ??
      env.OTEL_EXPORTER_OTLP_PROTOCOL ??
      "http/protobuf"
    ).trim();
    if (protocol === "http/json") {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
      spanExporter = new OTLPTraceExporter();
    } else if (protocol === "http/protobuf") {
      const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-proto");
      spanExporter = new OTLPTraceExporter();
    } else {
      throw new Error(
        `OTEL_EXPORTER_OTLP_PROTOCOL=${protocol}: Berth exports traces over http/protobuf or http/json`,
      );
    }
  }
  const provider = new NodeTracerProvider({
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES take precedence.
    resource: resourceFromAttributes({ "service.name": "berth" }).merge(
      detectResources({ detectors: [envDetector] }),
    ),
    spanProcessors: [new BatchSpanProcessor(spanExporter)],
  });
  provider.register({
    propagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  });
  return { tracer: provider.getTracer("berth"), flush: () => provider.forceFlush() };
}

/**
 * Tracing as `env` configures it, or undefined when it is off. The SDK is global to the process:
 * the first registry to start tracing registers it, later ones share it.
 */
export async function startTracing(env: TracingEnvironment): Promise<Tracing | undefined> {
  const exporter = tracingExporter(env);
  if (exporter === undefined) return undefined;
  started ??= startSdk(exporter, env);
  const { tracer, flush } = await started;
  // Loaded only when tracing is on: the API alone is ~9 MiB of a process's memory.
  const { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } =
    await import("@opentelemetry/api");
  return {
    startRequest: (req, res, describe) => {
      const parent = propagation.extract(ROOT_CONTEXT, req.headers);
      const method = req.method ?? "GET";
      const url = req.url ?? "/";
      const query = url.indexOf("?");
      const span = tracer.startSpan(
        method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            "http.request.method": method,
            "url.path": query === -1 ? url : url.slice(0, query),
            "client.address": req.socket.remoteAddress ?? "",
            "user_agent.original": req.headers["user-agent"] ?? "",
          },
        },
        parent,
      );
      res.once("close", () => {
        const { handler, repository, requestId } = describe();
        span.setAttribute("http.response.status_code", res.statusCode);
        span.setAttribute(`${PREFIX}request.id`, requestId);
        if (handler !== undefined) {
          span.updateName(`${method} ${handler}`);
          span.setAttribute("http.route", handler);
        }
        if (repository !== undefined) span.setAttribute(`${PREFIX}repository`, repository);
        if (!res.writableFinished) span.setAttribute(`${PREFIX}aborted`, true);
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      });
      return trace.setSpan(parent, span);
    },
    within: (active, fn) => context.with(active, fn),
    traceDriver: (driver) => {
      const name = driver.name;
      const traced: DriverCallTracer = (method, path, run) => {
        const active = context.active();
        // Only calls made for a traced request: background jobs would make root spans by the
        // thousand (health probes, purges).
        if (untraced.has(method) || trace.getSpan(active) === undefined) return run();
        const span = tracer.startSpan(
          `storage.${method}`,
          {
            kind: SpanKind.INTERNAL,
            attributes: {
              [`${PREFIX}storage.driver.name`]: name,
              [`${PREFIX}storage.path`]: path,
            },
          },
          active,
        );
        return context.with(trace.setSpan(active, span), run).then(
          (result) => {
            span.end();
            return result;
          },
          (error: unknown) => {
            if (!(error instanceof PathNotFoundError)) {
              span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).name });
            }
            span.end();
            throw error;
          },
        );
      };
      driver.tracer = traced;
    },
    flush,
  };
}
