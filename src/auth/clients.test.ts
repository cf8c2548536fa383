// Real clients log in to Berth in both modes: htpasswd (Basic on every request) and token (the
// built-in token service: the clients follow the Bearer challenge to it). skopeo pushes with
// --dest-creds and reads with --creds; podman logs in, pushes and pulls; wrong credentials and
// none are refused.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { startRegistry } from "../server/index.js";
import { clientsAuthSection, writeHtpasswd } from "../testing/auth.js";
import { buildImage } from "../testing/images.js";
import { imageEntry, writeOciLayout } from "../testing/oci-layout.js";
import { skopeo, skopeoCopy } from "../testing/skopeo.js";
import { skipUnlessCommands } from "../testing/tools.js";

const run = promisify(execFile);

for (const mode of ["htpasswd", "token"] as const) {
  describe(`clients log in (${mode} mode)`, () => {
    it(
      "skopeo with --creds and podman login push and pull; wrong credentials are refused",
      {
        skip: skipUnlessCommands(
          ["skopeo", "podman", "htpasswd"],
          ["skopeo", "podman", "apache2-utils"],
        ),
      },
      async () => {
        const dir = await mkdtemp(join(tmpdir(), `berth-clients-${mode}-`));
        const users = join(dir, "htpasswd");
        await writeHtpasswd(users, { alice: "alice-pw", eve: "eve-pw" });
        const registry = await startRegistry({
          driver: "inmemory",
          auth: clientsAuthSection(mode, users, dir),
          logLevel: "silent",
        });
        try {
          const host = `127.0.0.1:${registry.port}`;
          const source = join(dir, "source");
          await writeOciLayout(source, [
            imageEntry("image", buildImage({ layers: 2, gzip: true })),
          ]);

          await assert.rejects(skopeoCopy(`oci:${source}:image`, `docker://${host}/team/app:v1`));
          await assert.rejects(
            skopeoCopy(`oci:${source}:image`, `docker://${host}/team/app:v1`, {
              extra: ["--dest-creds", "alice:wrong"],
            }),
          );
          await assert.rejects(
            skopeoCopy(`oci:${source}:image`, `docker://${host}/team/app:v1`, {
              extra: ["--dest-creds", "eve:eve-pw"],
            }),
            "eve has no rights on team/**",
          );
          await skopeoCopy(`oci:${source}:image`, `docker://${host}/team/app:v1`, {
            extra: ["--dest-creds", "alice:alice-pw"],
          });
          const inspected = JSON.parse(
            await skopeo([
              "inspect",
              "--tls-verify=false",
              "--creds",
              "alice:alice-pw",
              `docker://${host}/team/app:v1`,
            ]),
          ) as { Layers: string[] };
          assert.equal(inspected.Layers.length, 2);

          const storage = [
            "--root",
            join(dir, "podman/root"),
            "--runroot",
            join(dir, "podman/runroot"),
            "--storage-driver",
            "vfs",
          ];
          const authfile = join(dir, "auth.json");
          const podman = async (args: string[], input?: string): Promise<string> => {
            const child = run("podman", [...storage, ...args], { timeout: 90_000 });
            if (input !== undefined) child.child.stdin!.end(input);
            try {
              return (await child).stdout;
            } catch (error) {
              const failure = error as { stderr?: string; message: string };
              throw new Error(
                `podman ${args.join(" ")} failed: ${failure.stderr || failure.message}`,
              );
            }
          };
          const login = [
            "login",
            "--authfile",
            authfile,
            "--tls-verify=false",
            "--username",
            "alice",
            "--password-stdin",
            host,
          ];
          await assert.rejects(podman(login, "wrong-password\n"));
          await podman(login, "alice-pw\n");
          await podman([
            "pull",
            "--authfile",
            authfile,
            "--tls-verify=false",
            `${host}/team/app:v1`,
          ]);
          await podman([
            "push",
            "--authfile",
            authfile,
            "--tls-verify=false",
            `${host}/team/app:v1`,
            `docker://${host}/team/copy:v1`,
          ]);
          const tags = JSON.parse(
            await skopeo([
              "list-tags",
              "--tls-verify=false",
              "--creds",
              "alice:alice-pw",
              `docker://${host}/team/copy`,
            ]),
          ) as { Tags: string[] };
          assert.deepEqual(tags.Tags, ["v1"]);
          await podman(["logout", "--authfile", authfile, host]);
          await assert.rejects(
            podman(["pull", "--authfile", authfile, "--tls-verify=false", `${host}/team/copy:v1`]),
          );
        } finally {
          await registry.close();
          await rm(dir, { recursive: true, force: true });
        }
      },
    );
  });
}
