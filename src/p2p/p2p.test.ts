// Peer-to-peer distribution end to end, small (the full size is `npm run bench:p2p`): an origin
// registry with its P2P side, three agents pulling one 32 MiB image at once with skopeo over
// BitTorrent, every digest checked, and the origin sending less than one image per agent. Also the
// origin-only transferer, a push through a read-write agent, and the tracker's answers.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import bencode from "bencode";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { buildImage, pushImage, type TestImage } from "../testing/images.js";
import { skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";
import { startAgent, startOriginP2P, type OriginP2P, type RunningAgent } from "./index.js";

const MiB = 1024 * 1024;

/** Checks every file skopeo wrote to a `dir:` destination against its name (the digest). */
async function verifyDir(dir: string, image: TestImage): Promise<void> {
  const expected = [...image.layers, image.config].map((blob) => blob.digest.slice(7));
  const files = await readdir(dir);
  for (const hex of expected) {
    assert.ok(files.includes(hex), `blob ${hex} pulled`);
    const bytes = await readFile(join(dir, hex));
    assert.equal(createHash("sha256").update(bytes).digest("hex"), hex);
  }
  const manifest = await readFile(join(dir, "manifest.json"));
  assert.equal(
    `sha256:${createHash("sha256").update(manifest).digest("hex")}`,
    image.manifest.digest,
  );
}

function reference(url: string, name: string): string {
  return `docker://${url.replace(/^http:\/\//, "")}/${name}`;
}

describe(
  "p2p: agents pull one image through the swarm",
  { skip: skipUnlessCommands(["skopeo"], ["skopeo"]) },
  () => {
    let dir: string;
    let origin: RunningRegistry;
    let p2p: OriginP2P;
    const agents: RunningAgent[] = [];
    // 4 layers of 8 MiB: 32 MiB of random (incompressible) bytes.
    const image = buildImage({ layers: 4, layerSize: 8 * MiB });
    const imageBytes = image.layers.reduce((sum, layer) => sum + layer.size, 0);

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "berth-p2p-"));
      origin = await startRegistry({
        driver: "filesystem",
        parameters: { rootdirectory: join(dir, "origin") },
      });
      p2p = await startOriginP2P({ driver: origin.driver, registryServer: origin.server });
      await pushImage(origin.storage.repository("team/app"), image, "v1");
    });

    after(async () => {
      for (const agent of agents) await agent.close();
      await p2p?.close();
      await origin?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it("3 agents pull 32 MiB at once, digests verified, origin egress under 3 images; a 4th peer dying mid-transfer fails none of them", async () => {
      for (let index = 0; index < 4; index++) {
        agents.push(
          await startAgent({
            root: join(dir, `agent${index}`),
            origin: origin.url,
            originP2P: p2p.url,
          }),
        );
      }
      const victim = agents.pop()!;
      const pulls = agents.map((agent, index) =>
        skopeoCopy(reference(agent.url, "team/app:v1"), `dir:${join(dir, `pull${index}`)}`, {
          all: false,
        }),
      );
      const victimPull = skopeoCopy(
        reference(victim.url, "team/app:v1"),
        `dir:${join(dir, "victim")}`,
        {
          all: false,
        },
      ).catch(() => "failed");
      // Once the 4th peer is serving pieces to the others, it dies: its connections drop at once.
      const deadline = Date.now() + 60_000;
      while ((victim.node?.uploaded ?? 0) < 2 * MiB && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await victim.node!.close();
      await victim.close();
      await victimPull;
      await Promise.all(pulls);
      for (let index = 0; index < 3; index++) await verifyDir(join(dir, `pull${index}`), image);
      const egress = p2p.egressBytes();
      assert.ok(
        egress < imageBytes * 3,
        `origin sent ${(egress / MiB).toFixed(1)} MiB for 3 pulls of ${imageBytes / MiB} MiB`,
      );
      // The agents served pieces to each other.
      const served = agents.filter((agent) => (agent.node?.uploaded ?? 0) > MiB).length;
      assert.ok(served >= 1, "agents seeded to each other");
    });

    it("an agent restarted on the same root serves from its CAS without the origin", async () => {
      const first = agents[0]!;
      await first.close();
      agents.shift();
      const before = p2p.egressBytes();
      const again = await startAgent({
        root: join(dir, "agent0"),
        origin: origin.url,
        originP2P: p2p.url,
      });
      agents.push(again);
      await skopeoCopy(reference(again.url, "team/app:v1"), `dir:${join(dir, "again")}`, {
        all: false,
      });
      await verifyDir(join(dir, "again"), image);
      assert.ok(p2p.egressBytes() - before < MiB, "only the tag and manifest came from the origin");
    });

    it("an agent without P2P pulls from the origin alone; a read-write agent pushes to the origin", async () => {
      const direct = await startAgent({ root: join(dir, "direct"), origin: origin.url });
      agents.push(direct);
      await skopeoCopy(reference(direct.url, "team/app:v1"), `dir:${join(dir, "direct-pull")}`, {
        all: false,
      });
      await verifyDir(join(dir, "direct-pull"), image);
      await assert.rejects(
        skopeoCopy(`dir:${join(dir, "direct-pull")}`, reference(direct.url, "team/copy:v1"), {
          all: false,
        }),
        "a read-only agent refuses a push",
      );

      const writer = await startAgent({
        root: join(dir, "writer"),
        origin: origin.url,
        originP2P: p2p.url,
        readWrite: true,
      });
      agents.push(writer);
      await skopeoCopy(`dir:${join(dir, "direct-pull")}`, reference(writer.url, "team/copy:v2"), {
        all: false,
      });
      await skopeoCopy(reference(origin.url, "team/copy:v2"), `dir:${join(dir, "pushed")}`, {
        all: false,
      });
      await verifyDir(join(dir, "pushed"), image);
    });
  },
);

describe("p2p: tracker", () => {
  let origin: RunningRegistry;
  let p2p: OriginP2P;
  let dir: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-tracker-"));
    origin = await startRegistry({ driver: "filesystem", parameters: { rootdirectory: dir } });
    p2p = await startOriginP2P({ driver: origin.driver });
  });
  after(async () => {
    await p2p.close();
    await origin.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** GET with a raw query (info_hash bytes percent-encoded), decoding the bencoded answer. */
  function announce(query: string): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      httpRequest(`${p2p.announceUrl}?${query}`, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve(bencode.decode(Buffer.concat(chunks)) as Record<string, unknown>),
        );
      })
        .on("error", reject)
        .end();
    });
  }

  const hash = "%01".repeat(20);
  const peer = (n: number): string => `%0${n}`.repeat(20);

  it("answers each peer with the others in compact form (BEP 23)", async () => {
    await announce(`info_hash=${hash}&peer_id=${peer(1)}&port=6881&left=0&compact=1`);
    const second = await announce(
      `info_hash=${hash}&peer_id=${peer(2)}&port=6882&left=10&compact=1`,
    );
    assert.deepEqual(
      Buffer.from(second.peers as Uint8Array),
      Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]),
    );
    assert.equal(second.complete, 1);
    assert.equal(second.incomplete, 1);
    await announce(`info_hash=${hash}&peer_id=${peer(1)}&port=6881&left=0&event=stopped`);
    const third = await announce(`info_hash=${hash}&peer_id=${peer(2)}&port=6882&left=10`);
    assert.equal((third.peers as Uint8Array).length, 0);
  });

  it("names what is wrong with a bad announce", async () => {
    const bad = await announce(`info_hash=abc&peer_id=${peer(1)}&port=6881`);
    assert.match(Buffer.from(bad["failure reason"] as Uint8Array).toString(), /info_hash/);
    const port = await announce(`info_hash=${hash}&peer_id=${peer(1)}&port=0`);
    assert.match(Buffer.from(port["failure reason"] as Uint8Array).toString(), /port/);
  });

  it("answers 404 for the metainfo of a blob the origin does not have", async () => {
    const response = await fetch(`${p2p.url}/metainfo/sha256:${"0".repeat(64)}`);
    assert.equal(response.status, 404);
    const bad = await fetch(`${p2p.url}/metainfo/not-a-digest`);
    assert.equal(bad.status, 404);
  });
});
