// Tracing with OpenTelemetry: off without OTEL_* variables (nothing installed on the driver, no
// export); on with them, a server span per request that continues the client's W3C traceparent,
// and a child span per storage driver call, exported over OTLP (http/json) to a collector this
// test runs. The SDK is global to the process: this file sets process.env for itself (node:test
// runs each file in its own process).

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { describe, it } from "node:test";
import { DriverBase } from "../driver/index.js";
import { eventually } from "../testing/eventually.js";
import { pushImage } from "../testing/harness.js";
import { tracingExporter } from "../tracing/index.js";
import { startRegistry } from "./index.js";

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

function attribute(span: OtlpSpan, key: string): unknown {
  const value = span.attributes.find((entry) => entry.key === key)?.value;
  return value === undefined ? undefined : Object.values(value)[0];
}

/** An OTLP/HTTP JSON collector: every span posted to /v1/traces. */
async function startCollector(): Promise<{ url: string; spans: OtlpSpan[]; close(): void }> {
  const spans: OtlpSpan[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
        resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[];
      };
      for (const resource of body.resourceSpans) {
        for (const scope of resource.scopeSpans) spans.push(...scope.spans);
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

function registryFetcher(url: string) {
  return {
    url,
    storage: undefined as never,
    fetch: (path: string, init?: RequestInit) => fetch(url + path, { redirect: "manual", ...init }),
    close: async () => {},
  };
}

describe("tracing", () => {
  it("is off unless OTEL_* variables configure an exporter", () => {
    assert.equal(tracingExporter({}), undefined);
    assert.equal(tracingExporter({ OTEL_SERVICE_NAME: "registry" }), undefined);
    assert.equal(tracingExporter({ OTEL_TRACES_EXPORTER: "none" }), undefined);
    assert.equal(tracingExporter({ OTEL_TRACES_EXPORTER: "otlp" }), "otlp");
    assert.equal(tracingExporter({ OTEL_TRACES_EXPORTER: "console" }), "console");
    assert.equal(tracingExporter({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318" }), "otlp");
    assert.equal(
      tracingExporter({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }),
      undefined,
    );
    assert.throws(
      () => tracingExporter({ OTEL_TRACES_EXPORTER: "zipkin" }),
      /OTEL_TRACES_EXPORTER/,
    );
  });

  it("installs nothing on the driver when off", async () => {
    const registry = await startRegistry({ driver: "inmemory", logLevel: "silent" });
    try {
      assert.ok(registry.driver instanceof DriverBase);
      assert.equal(registry.driver.tracer, undefined);
    } finally {
      await registry.close();
    }
  });

  it("continues a traceparent with a server span and child spans for driver calls", async () => {
    const collector = await startCollector();
    Object.assign(process.env, {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: collector.url,
      OTEL_BSP_SCHEDULE_DELAY: "50",
    });
    const registry = await startRegistry({ driver: "inmemory", logLevel: "silent" });
    try {
      const image = await pushImage(registryFetcher(registry.url), "traced/app", "v1");
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const parentId = "00f067aa0ba902b7";
      const response = await fetch(`${registry.url}/v2/traced/app/manifests/v1`, {
        headers: {
          traceparent: `00-${traceId}-${parentId}-01`,
          Accept: "application/vnd.oci.image.manifest.v1+json",
        },
      });
      assert.equal(response.status, 200);
      assert.equal(await response.text(), image.content);

      let server: OtlpSpan | undefined;
      await eventually(() => {
        server = collector.spans.find((span) => span.traceId === traceId && span.kind === 2);
        return server !== undefined;
      }, 10_000);
      assert.equal(server!.parentSpanId, parentId, "a child of the caller's span");
      assert.equal(server!.name, "GET manifest");
      assert.equal(attribute(server!, "http.route"), "manifest");
      assert.equal(attribute(server!, "http.response.status_code"), 200);
      assert.equal(attribute(server!, "io.cncf.distribution.repository"), "traced/app");
      assert.equal(attribute(server!, "url.path"), "/v2/traced/app/manifests/v1");

      await eventually(() => collector.spans.some((span) => span.parentSpanId === server!.spanId));
      const driverSpans = collector.spans.filter((span) => span.parentSpanId === server!.spanId);
      for (const span of driverSpans) {
        assert.equal(span.traceId, traceId);
        assert.match(span.name, /^storage\./);
        assert.equal(attribute(span, "io.cncf.distribution.storage.driver.name"), "inmemory");
        assert.match(String(attribute(span, "io.cncf.distribution.storage.path")), /^\/docker\//);
      }
      assert.ok(
        driverSpans.some((span) => span.name === "storage.getContent"),
        driverSpans.map((span) => span.name).join(", "),
      );

      // A request without traceparent starts its own trace.
      const pushes = collector.spans.filter(
        (span) => span.kind === 2 && span.name === "PUT manifest",
      );
      assert.equal(pushes.length, 1);
      assert.equal(pushes[0]!.parentSpanId ?? "", "");
      assert.notEqual(pushes[0]!.traceId, traceId);
    } finally {
      await registry.close();
      collector.close();
    }
  });
});
