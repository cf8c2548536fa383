// The notifier against a real HTTP receiver: distribution's envelope, order, retries, filters,
// the spool across a restart, the bounded queue. The spool is the in-memory driver (a restart is
// a new Notifier on the same driver) and, once, a filesystem directory.

import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createDriver, InMemoryDriver, type StorageDriver } from "../driver/index.js";
import { MetricsRegistry } from "../metrics/index.js";
import { eventually } from "../testing/eventually.js";
import { TestReceiver } from "../testing/receiver.js";
import {
  EVENTS_MEDIA_TYPE,
  manifestReferences,
  Notifier,
  type EndpointConfig,
  type EventOccurrence,
} from "./index.js";

function endpoint(url: string, overrides: Partial<EndpointConfig> = {}): EndpointConfig {
  return {
    name: "listener",
    url,
    headers: {},
    timeoutMs: 2_000,
    threshold: 1,
    backoffMs: 20,
    ignoredMediaTypes: [],
    ignoredActions: [],
    disabled: false,
    ...overrides,
  };
}

function notifier(
  endpoints: EndpointConfig[],
  driver?: StorageDriver,
  extra: Partial<ConstructorParameters<typeof Notifier>[0]> = {},
): Notifier {
  return new Notifier({
    config: { includeReferences: false, endpoints, spoolDirectory: undefined },
    source: { addr: "registry.test:5000", instanceID: "instance-1" },
    ...(driver === undefined
      ? {}
      : { spool: { driver, directory: (name: string) => `/spool/${name}` } }),
    ...extra,
  });
}

function occurrence(tag: string, action: EventOccurrence["action"] = "push"): EventOccurrence {
  return {
    action,
    target: {
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      digest: `sha256:${"a".repeat(64)}`,
      size: 10,
      length: 10,
      repository: "library/app",
      tag,
    },
    request: { id: "request-1", method: "PUT", useragent: "test" },
    actor: { name: "alice" },
  };
}

const tags = (receiver: TestReceiver): string[] =>
  receiver.events.map((event) => event.target.tag ?? "");

describe("notifier", () => {
  it("posts distribution's envelope, one event per request, with the endpoint's headers", async () => {
    const receiver = await new TestReceiver().start();
    const sender = notifier([
      endpoint(receiver.url, { headers: { Authorization: ["Bearer secret"], "X-A": ["1", "2"] } }),
    ]);
    try {
      await sender.start();
      sender.publish(occurrence("v1"));
      await eventually(() => receiver.received.length === 1);
      const [envelope] = receiver.received;
      assert.equal(envelope!.contentType, EVENTS_MEDIA_TYPE);
      assert.equal(envelope!.headers.authorization, "Bearer secret");
      assert.equal(envelope!.headers["x-a"], "1, 2");
      const [event] = envelope!.events;
      assert.match(event!.id, /^[0-9a-f-]{36}$/);
      assert.match(event!.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      assert.equal(event!.action, "push");
      assert.equal(event!.target.tag, "v1");
      assert.deepEqual(event!.actor, { name: "alice" });
      assert.deepEqual(event!.source, { addr: "registry.test:5000", instanceID: "instance-1" });
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  it("retries a refusing endpoint with backoff and delivers in order, once each", async () => {
    const receiver = await new TestReceiver().start();
    receiver.status = 503;
    const metrics = new MetricsRegistry();
    const sender = notifier([endpoint(receiver.url)], new InMemoryDriver(), { metrics });
    try {
      await sender.start();
      for (const tag of ["a", "b", "c"]) sender.publish(occurrence(tag));
      await eventually(() => receiver.refused >= 2);
      assert.equal(receiver.events.length, 0);
      assert.equal(sender.pending().listener, 3);
      receiver.status = 202;
      await eventually(() => receiver.events.length === 3);
      assert.deepEqual(tags(receiver), ["a", "b", "c"]);
      await eventually(() => sender.pending().listener === 0);
      const text = await metrics.scrape();
      assert.match(
        text,
        /registry_notifications_events_total\{type="Events",endpoint="listener"\} 3/,
      );
      assert.match(
        text,
        /registry_notifications_events_total\{type="Successes",endpoint="listener"\} 3/,
      );
      assert.match(
        text,
        /registry_notifications_events_total\{type="Failures",endpoint="listener"\} [1-9]/,
      );
      assert.match(
        text,
        /registry_notifications_status_total\{code="503 Service Unavailable",endpoint="listener"\}/,
      );
      assert.match(text, /registry_notifications_pending_total\{endpoint="listener"\} 0/);
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  it("keeps undelivered events in the spool across a restart and delivers them first, in order", async () => {
    const receiver = await new TestReceiver().start();
    const url = receiver.url;
    await receiver.stop();
    const driver = new InMemoryDriver();
    const first = notifier([endpoint(url)], driver);
    await first.start();
    for (const tag of ["one", "two", "three"]) first.publish(occurrence(tag));
    await first.close();
    assert.equal((await driver.list("/spool/listener")).length, 3, "spooled");

    await receiver.start();
    const second = notifier([endpoint(url)], driver);
    try {
      await second.start();
      second.publish(occurrence("four"));
      await eventually(() => receiver.events.length === 4);
      assert.deepEqual(tags(receiver), ["one", "two", "three", "four"]);
      await eventually(async () => {
        const left = await driver.list("/spool/listener").catch(() => []);
        return left.length === 0;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(receiver.events.length, 4, "no event twice");
      assert.equal(new Set(receiver.events.map((event) => event.id)).size, 4);
    } finally {
      await second.close();
      await receiver.stop();
    }
  });

  it("spools in a local directory through the filesystem driver", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-spool-"));
    const receiver = await new TestReceiver().start();
    receiver.status = 500;
    try {
      const driver = await createDriver("filesystem", { rootdirectory: directory });
      const first = notifier([endpoint(receiver.url, { threshold: 100 })], driver);
      await first.start();
      first.publish(occurrence("kept"));
      await first.close();
      assert.equal((await readdir(join(directory, "spool", "listener"))).length, 1);
      receiver.status = 200;
      const second = notifier([endpoint(receiver.url)], driver);
      await second.start();
      await eventually(() => receiver.events.length === 1);
      await second.close();
      assert.deepEqual(tags(receiver), ["kept"]);
      const left = await readdir(join(directory, "spool", "listener")).catch(() => []);
      assert.deepEqual(left, [], "delivered events leave the spool");
    } finally {
      await receiver.stop();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("never makes publishing wait for a slow endpoint, and a slow one does not hold up another", async () => {
    const fast = await new TestReceiver().start();
    // A server that never answers: each post waits for the endpoint's timeout.
    const { createServer } = await import("node:http");
    const silent = createServer(() => {});
    silent.listen(0, "127.0.0.1");
    await new Promise((resolve) => silent.once("listening", resolve));
    const silentUrl = `http://127.0.0.1:${(silent.address() as { port: number }).port}/`;
    const sender = notifier([
      endpoint(silentUrl, { name: "silent", timeoutMs: 60_000 }),
      endpoint(fast.url, { name: "fast" }),
    ]);
    try {
      await sender.start();
      for (let i = 0; i < 100; i++) sender.publish(occurrence(`t${i}`));
      await eventually(() => fast.events.length === 100);
      assert.equal(sender.pending().silent, 100, "the silent endpoint still holds its first");
    } finally {
      silent.closeAllConnections();
      silent.close();
      await sender.close();
      await fast.stop();
    }
  });

  it("drops what the endpoint ignores by action or media type, and counts a full queue", async () => {
    const receiver = await new TestReceiver().start();
    receiver.status = 500;
    const metrics = new MetricsRegistry();
    const sender = notifier(
      [
        endpoint(receiver.url, {
          ignoredActions: ["pull"],
          ignoredMediaTypes: ["application/octet-stream"],
          threshold: 1_000,
          backoffMs: 10_000,
        }),
      ],
      undefined,
      { metrics, limits: { limit: 2 } },
    );
    try {
      await sender.start();
      sender.publish(occurrence("pulled", "pull"));
      const blob = occurrence("blob");
      blob.target.mediaType = "application/octet-stream";
      sender.publish(blob);
      for (const tag of ["x", "y", "z"]) sender.publish(occurrence(tag));
      assert.equal(sender.pending().listener, 2);
      assert.match(
        await metrics.scrape(),
        /registry_notifications_dropped_total\{endpoint="listener"\} 1/,
      );
      receiver.status = 200;
    } finally {
      await sender.close();
      await receiver.stop();
    }
  });

  it("lists a manifest's references: an image's config and layers, an index's manifests", () => {
    const config = { mediaType: "c", digest: "sha256:1", size: 1 };
    const layer = { mediaType: "l", digest: "sha256:2", size: 2 };
    const image = Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [layer] }));
    assert.deepEqual(manifestReferences(image), [config, layer]);
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [layer] }));
    assert.deepEqual(manifestReferences(index), [layer]);
    assert.deepEqual(manifestReferences(Buffer.from("not json")), []);
  });
});
