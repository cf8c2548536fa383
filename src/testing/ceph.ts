// Test support: a throwaway single-node Ceph cluster with an S3 endpoint (the RADOS Gateway), in a
// temp dir, without root or systemd. One monitor, one OSD, one radosgw (beast frontend on a free
// loopback port; `rgw: false` leaves it out, for librados clients), cephx off, pools of size 1. Start it once per test file (`before`), stop it at the
// end (`after`); `stop()` kills every daemon and removes the temp dir.
//
// Daemons run in the foreground (`-f`) as children of the test process. They are killed by
// `stop()`, by a process 'exit' handler, and, should the test process be killed outright (SIGKILL,
// a runner's timeout), by a small detached watchdog that notices the parent is gone within a
// second and kills them and removes the dir, so nothing keeps running or stays in /tmp.
//
// The object store is memstore by default: the cluster is up in about 2 s, at the cost of holding
// objects in the OSD's memory (about twice their size; the gateway's garbage collector is tuned to
// give deleted objects back within seconds). `bluestore` on a sparse file in the temp dir is there
// for tests that keep gigabytes; it starts some seconds slower.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";

const execFileAsync = promisify(execFile);

/** Runs a Ceph command line tool to completion; a hung one fails after a minute. */
const run = (command: string, args: string[]) => execFileAsync(command, args, { timeout: 60_000 });

/** A running cluster's S3 endpoint and how to end it. */
export interface CephCluster {
  /** The radosgw S3 endpoint, `http://127.0.0.1:<port>` ("" when started with `rgw: false`). */
  endpoint: string;
  /** The cluster's ceph.conf, for librados clients (`CEPH_CONF`, the rados driver's `conffile`). */
  confFile: string;
  /** Creates a RADOS pool (8 placement groups, size 1). */
  createPool(name: string): Promise<void>;
  /** Stops (SIGSTOP) the OSD: every object operation waits from then on, as in an outage. */
  pauseOsd(): void;
  /** Lets a paused OSD run again (SIGCONT). */
  resumeOsd(): void;
  /** Keys of the S3 user created for the tests (full control of its buckets). */
  accessKey: string;
  secretKey: string;
  /** Any region works with SigV4 on RGW; this is the one to hand to clients. */
  region: string;
  /** Milliseconds from the first command to an S3 endpoint ready with its user. */
  startMs: number;
  /**
   * The radosgw log; its `beast:` lines are the gateway's access log, one per HTTP request
   * (method, path, status, user agent), at the default debug_rgw level.
   */
  rgwLog: string;
  /** Creates a bucket owned by the test user. */
  createBucket(name: string): Promise<void>;
  /** The process ids of the cluster's daemons (monitor, OSD, gateway), for CPU figures. */
  daemonPids(): number[];
  /** Kills all daemons and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** How to start the cluster. */
export interface CephOptions {
  /** OSD object store: "memstore" (default; RAM) or "bluestore" (a sparse file in the temp dir). */
  objectStore?: "memstore" | "bluestore";
  /** Start the RADOS Gateway (default true); without it the cluster is up a few seconds sooner. */
  rgw?: boolean;
}

const REGION = "us-east-1";
const READY_TIMEOUT_MS = 60_000;

/** A loopback port nothing listens on right now. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function configuration(
  dir: string,
  fsid: string,
  monPort: number,
  rgwPort: number,
  objectStore: string,
): string {
  return `[global]
fsid = ${fsid}
mon_host = v2:127.0.0.1:${monPort}
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
# radosgw will not talk to a monitor in the default secure-only mode without cephx
ms_mon_client_mode = crc secure
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_autoscale_mode = off
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_crush_chooseleaf_type = 0
# the monitor commits every 50 ms instead of every second: radosgw's first start creates pools
paxos_propose_interval = 0.05
run_dir = ${dir}/run
admin_socket = ${dir}/run/$name.asok
pid_file = ${dir}/run/$name.pid
log_file = ${dir}/log/$name.log
mon_data = ${dir}/mon/$name
osd_data = ${dir}/osd/$name
osd_objectstore = ${objectStore}
memstore_device_bytes = ${4 * 1024 ** 3}
bluestore_block_path = ${dir}/osd/block
bluestore_block_size = ${20 * 1024 ** 3}
bluestore_block_create = true
osd_memory_target = ${512 * 1024 ** 2}
[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:${rgwPort} tcp_nodelay=1
rgw_data = ${dir}/rgw
rgw_thread_pool_size = 64
# give the space of deleted and overwritten objects back within seconds (memstore keeps it in RAM)
rgw_gc_obj_min_wait = 2
rgw_gc_processor_period = 2
`;
}

/** Starts a cluster; rejects (leaving nothing behind) if it does not come up within a minute. */
export async function startCeph(options: CephOptions = {}): Promise<CephCluster> {
  const started = performance.now();
  const dir = await mkdtemp(join(tmpdir(), "berth-ceph-"));
  const conf = join(dir, "ceph.conf");
  const daemons: ChildProcess[] = [];
  let watchdog: ChildProcess | undefined;
  let stopped = false;

  // Synchronous on purpose: it also runs from the 'exit' handler, where nothing async can.
  const killNow = () => {
    for (const daemon of daemons) {
      if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill("SIGKILL");
    }
    if (watchdog?.pid !== undefined) {
      try {
        process.kill(watchdog.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  const onExit = () => {
    killNow();
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", onExit);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off("exit", onExit);
    const exits = daemons.map(
      (daemon) =>
        new Promise<void>((resolve) => {
          if (daemon.exitCode !== null || daemon.signalCode !== null) resolve();
          else daemon.once("exit", () => resolve());
        }),
    );
    killNow();
    await Promise.all(exits);
    await rm(dir, { recursive: true, force: true });
  };

  const daemon = async (name: string, args: string[]) => {
    const log = await open(join(dir, "log", `${name}.out`), "a");
    const child = spawn(args[0]!, [...args.slice(1), "-c", conf, "-f"], {
      stdio: ["ignore", log.fd, log.fd],
      detached: false,
    });
    await log.close();
    daemons.push(child);
    await writeFile(join(dir, "pids"), daemons.map((d) => d.pid).join(" "));
    return child;
  };

  try {
    const [monPort, rgwPort] = [await freePort(), await freePort()];
    const fsid = randomUUID();
    const objectStore = options.objectStore ?? "memstore";
    await Promise.all(
      ["run", "log", "mon", "osd/osd.0", "rgw"].map((sub) =>
        mkdir(join(dir, sub), { recursive: true }),
      ),
    );
    await writeFile(conf, configuration(dir, fsid, monPort, rgwPort, objectStore));
    await writeFile(join(dir, "pids"), "");

    // The watchdog outlives a killed test process (own session) and cleans up after it.
    watchdog = spawn(
      "sh",
      [
        "-c",
        `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; kill -9 $(cat '${dir}/pids') 2>/dev/null; rm -rf '${dir}'`,
      ],
      { detached: true, stdio: "ignore" },
    );
    watchdog.unref();

    await run("monmaptool", [
      "--create",
      "--addv",
      "a",
      `[v2:127.0.0.1:${monPort}]`,
      "--fsid",
      fsid,
      join(dir, "monmap"),
    ]);
    await run("ceph-mon", ["-c", conf, "--mkfs", "-i", "a", "--monmap", join(dir, "monmap")]);
    await daemon("mon.a", ["ceph-mon", "-i", "a"]);
    // Registering the OSD with the monitor and making its store are independent.
    await Promise.all([
      run("ceph", ["-c", conf, "--connect-timeout", "30", "osd", "create"]),
      run("ceph-osd", ["-c", conf, "-i", "0", "--mkfs"]),
    ]);
    const osd = await daemon("osd.0", ["ceph-osd", "-i", "0"]);
    const signalOsd = (signal: NodeJS.Signals) => {
      if (osd.exitCode === null && osd.signalCode === null) osd.kill(signal);
    };
    const cluster = {
      confFile: conf,
      daemonPids: () => daemons.flatMap((daemon) => (daemon.pid === undefined ? [] : [daemon.pid])),
      startMs: 0,
      createPool: async (name: string) => {
        await run("ceph", ["-c", conf, "osd", "pool", "create", name, "8", "8"]);
      },
      pauseOsd: () => signalOsd("SIGSTOP"),
      resumeOsd: () => signalOsd("SIGCONT"),
    };
    if (options.rgw === false) {
      // The OSD is up once a pool accepts a write: wait for it as the gateway's start would.
      await run("ceph", ["-c", conf, "osd", "pool", "create", "berth-ready", "8", "8"]);
      await run("rados", ["-c", conf, "-p", "berth-ready", "put", "ready", "/dev/null"]);
      return {
        ...cluster,
        endpoint: "",
        accessKey: "",
        secretKey: "",
        region: REGION,
        rgwLog: "",
        startMs: Math.round(performance.now() - started),
        createBucket: () => Promise.reject(new Error("Ceph started without radosgw (rgw: false)")),
        stop,
      };
    }
    const rgw = await daemon("client.rgw", ["radosgw", "-n", "client.rgw"]);

    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitForGateway(endpoint, daemons, dir);

    const accessKey = randomBytes(10).toString("hex").toUpperCase();
    const secretKey = randomBytes(20).toString("hex");
    await run("radosgw-admin", [
      "-c",
      conf,
      "-n",
      "client.rgw",
      "user",
      "create",
      "--uid",
      "berth",
      "--display-name",
      "Berth tests",
      "--access-key",
      accessKey,
      "--secret-key",
      secretKey,
    ]);
    if (rgw.exitCode !== null) throw new Error("radosgw exited after start");

    const client = new S3Client({
      region: REGION,
      endpoint,
      forcePathStyle: true,
      credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
    });
    return {
      ...cluster,
      endpoint,
      accessKey,
      secretKey,
      region: REGION,
      rgwLog: join(dir, "log", "client.rgw.log"),
      startMs: Math.round(performance.now() - started),
      createBucket: async (name: string) => {
        await client.send(new CreateBucketCommand({ Bucket: name }));
      },
      stop: async () => {
        client.destroy();
        await stop();
      },
    };
  } catch (error) {
    const logs = await logTails(dir);
    await stop();
    throw new Error(`Ceph did not start: ${(error as Error).message}\n${logs}`, { cause: error });
  }
}

/** One request of the gateway's access log. */
export interface RgwRequest {
  method: string;
  /** The request's path and query, as sent: `/<bucket>/<key>?<query>`. */
  target: string;
  status: number;
  userAgent: string;
}

/** The requests in the gateway's access log `log` (CephCluster.rgwLog), in order. */
export async function readRgwRequests(log: string): Promise<RgwRequest[]> {
  const text = await readFile(log, "utf8");
  const requests: RgwRequest[] = [];
  // beast: 0x7f..: 127.0.0.1 - berth [29/Nov/2026:02:48:08.194 +0000] "PUT /b/k HTTP/1.1" 200 5 - "ua" ...
  const line = / beast: \S+ \S+ - \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d+) \S+ \S+ "([^"]*)"/;
  for (const entry of text.split("\n")) {
    const match = line.exec(entry);
    if (match === null) continue;
    requests.push({
      method: match[1]!,
      target: match[2]!,
      status: Number(match[3]),
      userAgent: match[4]!,
    });
  }
  return requests;
}

/** Polls the gateway until it answers HTTP; fails early when a daemon has exited. */
async function waitForGateway(
  endpoint: string,
  daemons: ChildProcess[],
  dir: string,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const dead = daemons.find((daemon) => daemon.exitCode !== null || daemon.signalCode !== null);
    if (dead !== undefined) {
      throw new Error(
        `${dead.spawnargs.slice(0, 3).join(" ")} exited with ${dead.exitCode ?? dead.signalCode}`,
      );
    }
    try {
      const answer = await fetch(endpoint, { signal: AbortSignal.timeout(1000) });
      await answer.arrayBuffer();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(
    `radosgw did not answer at ${endpoint} within ${READY_TIMEOUT_MS / 1000} s (logs in ${dir})`,
  );
}

/** The last lines of each daemon's log, for a start failure's message. */
async function logTails(dir: string): Promise<string> {
  const parts: string[] = [];
  for (const name of ["mon.a", "osd.0", "client.rgw"]) {
    for (const file of [`${name}.out`, `${name}.log`]) {
      const text = await readFile(join(dir, "log", file), "utf8").catch(() => "");
      if (text.trim() !== "")
        parts.push(`--- ${file}\n${text.trimEnd().split("\n").slice(-15).join("\n")}`);
    }
  }
  return parts.join("\n");
}
