// The docker CLI (with Debian's dockerd) and containerd's ctr log in to Berth in both modes:
// htpasswd (Basic on every request) and token (Berth's built-in token service; the daemons follow
// the Bearer challenge to it: dockerd with GET and Basic, containerd with the OAuth2 password
// grant). docker: a wrong password is refused at login, a user without rights logs in but cannot
// push, alice logs in, pushes an image built with `docker import`, pulls it back, logs out and is
// then refused. ctr: wrong or missing credentials refused for pull and push, alice pulls and pushes.
// No network: the image is a one-file tar; the daemons run in temp directories of their own.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startRegistry, type RunningRegistry } from "../server/index.js";
import { clientsAuthSection, writeHtpasswd } from "../testing/auth.js";
import { startContainerd, startDockerd } from "../testing/daemons.js";
import { tarWithFile } from "../testing/images.js";
import { skipUnlessCommands } from "../testing/tools.js";

/** What docker and ctr say when the registry refuses them. */
const REFUSED =
  /unauthorized|denied|insufficient_scope|authentication required|401|403|no basic auth credentials/i;

const skip = skipUnlessCommands(
  ["dockerd", "docker", "containerd", "ctr", "htpasswd"],
  ["docker.io", "containerd", "apache2-utils"],
);

describe("docker and ctr log in", { skip }, () => {
  let dir: string;
  let docker: Awaited<ReturnType<typeof startDockerd>>;
  let containerd: Awaited<ReturnType<typeof startContainerd>>;
  let image: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "berth-daemons-"));
    await writeHtpasswd(join(dir, "htpasswd"), { alice: "alice-pw", bob: "bob-pw", eve: "eve-pw" });
    image = join(dir, "rootfs.tar");
    await writeFile(image, tarWithFile("hello.txt", Buffer.from("hello from berth\n")));
    [docker, containerd] = await Promise.all([
      startDockerd(join(dir, "docker")),
      startContainerd(join(dir, "containerd")),
    ]);
  });

  after(async () => {
    await Promise.all([docker?.stop(), containerd?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  for (const mode of ["htpasswd", "token"] as const) {
    describe(`${mode} mode`, () => {
      let registry: RunningRegistry;
      let host: string;

      before(async () => {
        registry = await startRegistry({
          driver: "inmemory",
          // ctr repeats a refused request several times (each a failed login), which would use up
          // the default budget (auth.throttle, tested on its own) within this test.
          auth: {
            ...clientsAuthSection(mode, join(dir, "htpasswd"), join(dir, mode)),
            throttle: { attempts: 1000 },
          },
          logLevel: "silent",
        });
        host = `127.0.0.1:${registry.port}`;
      });

      after(() => registry.close());

      /** The repository's tags in storage; none when nothing was pushed to it. */
      const tags = (name: string): Promise<string[]> =>
        registry.storage
          .repository(name)
          .tags.list()
          .catch((error: { code?: string }) => {
            if (error.code === "NAME_UNKNOWN") return [];
            throw error;
          });

      it("docker login, push, pull and logout; a wrong password and a user without rights are refused", async () => {
        const app = `${host}/team/app:v1`;
        await docker.run(["import", image, app]);
        const login = (user: string): string[] => ["login", host, "-u", user, "--password-stdin"];

        await assert.rejects(docker.run(login("alice"), "wrong-password\n"), REFUSED);
        await assert.rejects(docker.run(["push", app]), REFUSED); // no credentials: push refused
        await docker.run(login("eve"), "eve-pw\n");
        await assert.rejects(docker.run(["push", app]), REFUSED); // eve has no rights on team/**
        assert.deepEqual(await tags("team/app"), []);

        await docker.run(login("alice"), "alice-pw\n");
        await docker.run(["push", app]);
        assert.deepEqual(await tags("team/app"), ["v1"]);
        await docker.run(["rmi", app]);
        await docker.run(["pull", app]);
        const inspected = JSON.parse(await docker.run(["image", "inspect", app])) as unknown[];
        assert.equal(inspected.length, 1);

        await docker.run(["logout", host]);
        await docker.run(["rmi", app]);
        await assert.rejects(docker.run(["pull", app]), REFUSED); // logged out: pull refused
      });

      // Pulls what the docker test pushed (tests in a describe run in order).
      it("ctr pulls and pushes with --user; wrong or missing credentials are refused", async () => {
        const app = `${host}/team/app:v1`;
        const copy = `${host}/team/ctr:v1`;
        const pull = ["images", "pull", "--plain-http", "--snapshotter", "native"];
        const push = ["images", "push", "--plain-http"];

        await assert.rejects(containerd.run([...pull, app]), REFUSED); // no credentials: pull refused
        await assert.rejects(containerd.run([...pull, "--user", "bob:wrong", app]), REFUSED);
        await assert.rejects(containerd.run([...pull, "--user", "eve:eve-pw", app]), REFUSED);
        await containerd.run([...pull, "--user", "alice:alice-pw", app]);

        await containerd.run(["images", "tag", "--force", app, copy]);
        await assert.rejects(containerd.run([...push, copy]), REFUSED); // no credentials: push refused
        await assert.rejects(containerd.run([...push, "--user", "bob:wrong", copy]), REFUSED);
        await assert.rejects(containerd.run([...push, "--user", "eve:eve-pw", copy]), REFUSED);
        assert.deepEqual(await tags("team/ctr"), []);
        await containerd.run([...push, "--user", "alice:alice-pw", copy]);
        assert.deepEqual(await tags("team/ctr"), ["v1"]);
        await containerd.run(["images", "rm", app, copy]);
      });
    });
  }
});
