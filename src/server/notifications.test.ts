// Notifications end to end: skopeo pushes, copies (a cross-repository mount), pulls and deletes
// against a registry whose `notifications` section names a test receiver, which gets distribution's
// envelope for each; and a receiver that is down during a push, the registry restarted before it
// comes back, still gets every event, once, in order.

import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { EVENTS_MEDIA_TYPE, type RegistryEvent } from "../notify/index.js";
import { eventually } from "../testing/eventually.js";
import { buildImage, type TestImage } from "../testing/images.js";
import { imageEntry, writeOciLayout } from "../testing/oci-layout.js";
import { TestReceiver } from "../testing/receiver.js";
import { skopeo, skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startRegistry, type RunningRegistry } from "./index.js";

const BLOB = "application/octet-stream";
/** How long an event may take to arrive: it fails only a run that waits this long (on a loaded machine 5 s was once too short). */
const LOADED = 20_000;

function start(root: string, receiverUrl: string): Promise<RunningRegistry> {
  return startRegistry({
    config: {
      version: "0.1",
      storage: { filesystem: { rootdirectory: root }, delete: { enabled: true } },
      http: { addr: "127.0.0.1:0" },
      log: { accesslog: { disabled: true } },
      notifications: {
        events: { includereferences: true },
        endpoints: [
          {
            name: "platform",
            url: receiverUrl,
            headers: { Authorization: ["Bearer receiver-token"] },
            timeout: "2s",
            threshold: 2,
            backoff: "100ms",
          },
        ],
      },
    },
    logLevel: "silent",
  });
}

/** The digests of an image's blobs: its layers and config. */
function blobDigests(image: TestImage): string[] {
  return [...image.layers, image.config].map((blob) => blob.digest).sort();
}

const of = (events: RegistryEvent[], action: string, mediaType?: string): RegistryEvent[] =>
  events.filter(
    (event) =>
      event.action === action && (mediaType === undefined || event.target.mediaType === mediaType),
  );

describe("notifications", { skip: skipUnlessCommands(["skopeo"], ["skopeo"]) }, () => {
  it("sends push, mount, pull and delete events for skopeo in distribution's envelope", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-events-"));
    const receiver = await new TestReceiver().start();
    const registry = await start(join(directory, "data"), receiver.url);
    try {
      const image = buildImage({ layers: 2, gzip: true });
      await writeOciLayout(join(directory, "source"), [imageEntry("image", image)]);
      const host = `127.0.0.1:${registry.port}`;
      await skopeoCopy(`oci:${join(directory, "source")}:image`, `docker://${host}/events/app:v1`);

      await eventually(
        () => of(receiver.events, "push", image.manifest.mediaType).length === 1,
        LOADED,
      );
      const envelope = receiver.received[0]!;
      assert.equal(envelope.contentType, EVENTS_MEDIA_TYPE);
      assert.equal(envelope.headers.authorization, "Bearer receiver-token");
      const pushes = of(receiver.events, "push", BLOB);
      assert.deepEqual(
        [...new Set(pushes.map((event) => event.target.digest))].sort(),
        blobDigests(image),
      );
      const [manifest] = of(receiver.events, "push", image.manifest.mediaType);
      assert.deepEqual(manifest!.target, {
        mediaType: image.manifest.mediaType,
        size: image.manifest.bytes.length,
        digest: image.manifest.digest,
        length: image.manifest.bytes.length,
        repository: "events/app",
        url: `http://${host}/v2/events/app/manifests/${image.manifest.digest}`,
        tag: "v1",
        references: [image.config, ...image.layers].map((blob) => ({
          mediaType: blob.mediaType,
          digest: blob.digest,
          size: blob.bytes.length,
        })),
      });
      assert.equal(manifest!.request.method, "PUT");
      assert.match(manifest!.request.useragent, /skopeo|containers/i);
      assert.match(manifest!.request.addr ?? "", /^127\.0\.0\.1:\d+$/);
      assert.equal(manifest!.request.host, host);
      assert.match(manifest!.source.addr ?? "", new RegExp(`:${registry.port}$`));
      assert.match(manifest!.source.instanceID, /^[0-9a-f-]{36}$/);
      assert.equal(pushes.at(-1)!.timestamp <= manifest!.timestamp, true, "blobs before manifest");

      // A copy inside the registry mounts the blobs the other repository has.
      await skopeoCopy(`docker://${host}/events/app:v1`, `docker://${host}/events/copy:v1`);
      await eventually(
        () => of(receiver.events, "push", image.manifest.mediaType).length === 2,
        LOADED,
      );
      const mounts = of(receiver.events, "mount");
      assert.ok(mounts.length >= 1, "skopeo mounted the blobs across repositories");
      for (const mount of mounts) {
        assert.equal(mount.target.repository, "events/copy");
        assert.equal(mount.target.fromRepository, "events/app");
        assert.equal(mount.target.mediaType, BLOB);
        assert.ok(blobDigests(image).includes(mount.target.digest!));
      }
      const pulledByCopy = of(receiver.events, "pull", image.manifest.mediaType);
      assert.ok(pulledByCopy.length >= 1, "the copy pulled the manifest");

      const before = receiver.events.length;
      // Pulled by hand: skopeo sometimes opens a blob GET it then drops (the client closes before
      // any byte of the body), which is no pull, so a skopeo pull does not always make 3 events.
      const pulled = await fetch(`http://${host}/v2/events/app/manifests/v1`, {
        headers: { Accept: image.manifest.mediaType },
      });
      assert.equal(pulled.status, 200);
      await pulled.arrayBuffer();
      for (const digest of blobDigests(image)) {
        const blob = await fetch(`http://${host}/v2/events/app/blobs/${digest}`);
        assert.equal(blob.status, 200);
        await blob.arrayBuffer();
      }
      await eventually(() => of(receiver.events.slice(before), "pull", BLOB).length >= 3, LOADED);
      const pulls = of(receiver.events.slice(before), "pull");
      const manifestPull = pulls.find((event) => event.target.digest === image.manifest.digest);
      assert.equal(manifestPull?.target.tag, "v1");
      assert.equal(manifestPull?.target.repository, "events/app");
      assert.deepEqual(
        [...new Set(of(pulls, "pull", BLOB).map((event) => event.target.digest))].sort(),
        blobDigests(image),
      );

      await skopeo(["delete", "--tls-verify=false", `docker://${host}/events/app:v1`]);
      await eventually(() => of(receiver.events, "delete").length === 1, LOADED);
      const [deleted] = of(receiver.events, "delete");
      assert.deepEqual(deleted!.target, {
        digest: image.manifest.digest,
        repository: "events/app",
      });
      assert.equal(deleted!.request.method, "DELETE");
      assert.equal(new Set(receiver.events.map((event) => event.id)).size, receiver.events.length);
    } finally {
      await registry.close();
      await receiver.stop();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it("delivers a push's events after a restart when the receiver was down, once each, in order", async () => {
    const directory = await mkdtemp(join(tmpdir(), "berth-events-"));
    const root = join(directory, "data");
    const receiver = await new TestReceiver().start();
    await receiver.stop();
    let registry = await start(root, receiver.url);
    try {
      const image = buildImage({ layers: 3, gzip: true });
      await writeOciLayout(join(directory, "source"), [imageEntry("image", image)]);
      const host = `127.0.0.1:${registry.port}`;
      await skopeoCopy(`oci:${join(directory, "source")}:image`, `docker://${host}/down/app:v1`);
      const waiting = registry.notifier!.pending().platform!;
      assert.ok(waiting >= 5, `${waiting} events waiting: 4 blobs and the manifest at least`);
      await registry.close();
      const spool = join(root, "berth", "notifications", "platform");
      assert.equal((await readdir(spool)).length, waiting, "every waiting event is spooled");

      registry = await start(root, receiver.url);
      assert.equal(registry.notifier!.pending().platform, waiting);
      await receiver.start();
      await eventually(() => receiver.events.length === waiting, LOADED);
      const events = receiver.events;
      assert.equal(new Set(events.map((event) => event.id)).size, waiting, "once each");
      const times = events.map((event) => event.timestamp);
      assert.deepEqual(times, [...times].sort(), "in the order they happened");
      assert.equal(events.at(-1)!.target.digest, image.manifest.digest, "the manifest last");
      assert.equal(events.at(-1)!.target.tag, "v1");
      assert.deepEqual(
        [...new Set(of(events, "push", BLOB).map((event) => event.target.digest))].sort(),
        blobDigests(image),
      );
      await eventually(async () => (await readdir(spool).catch(() => [])).length === 0, LOADED);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(receiver.events.length, waiting, "nothing sent twice");
    } finally {
      await registry.close();
      await receiver.stop();
      await rm(directory, { recursive: true, force: true });
    }
  });
});
