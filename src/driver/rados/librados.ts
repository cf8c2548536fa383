// Over 400 lines: the whole librados binding (declarations, aio queue, cluster, I/O context).
// librados (Debian's librados2) through koffi, an FFI with prebuilt binaries in its npm package.
// Every object operation is one of librados's asynchronous calls (rados_aio_*): the call only
// queues the operation and returns; librados's own thread calls back when the OSD has answered,
// and koffi relays that callback to the event loop. Nothing here blocks the loop on Ceph, except
// connecting (rados_connect, which has no asynchronous form; it runs on koffi's worker thread).
//
// Why koffi rather than an N-API addon (docs/driver-rados.md): a koffi call costs some microseconds
// (7 µs measured on the loaded CI machine) against 1.6 ms for the cheapest RADOS write on a local
// cluster, so a compiled addon could save under 1% of any operation, and koffi needs no compiler.
//
// Two rules of koffi's cross-thread callbacks shape this file: a callback arriving while the
// process has nothing else to keep it alive aborts it (koffi's relay is an unref'd thread-safe
// function), so a referenced timer lives while operations are in flight; and koffi holds at most
// 256 queued callbacks, so at most MAX_IN_FLIGHT operations are in flight, the rest wait their turn.

import type KoffiDefault from "koffi";

/** The koffi module, as `(await import("koffi")).default`. */
export type Koffi = typeof KoffiDefault;
/** A function loaded from librados: called directly, or `.async` on koffi's worker thread. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type NativeFunction = ((...args: any[]) => unknown) & { async: (...args: any[]) => void };
/** A native pointer as koffi 3 gives it. */
type Pointer = bigint;

/** Operations in flight at once, per process (koffi queues at most 256 callbacks). */
const MAX_IN_FLIGHT = 128;

/** errno values librados returns (negated). */
export const Errno = {
  ENOENT: 2,
  EIO: 5,
  ERANGE: 34,
  EOVERFLOW: 75,
  ETIMEDOUT: 110,
  ECANCELED: 125,
} as const;

/** A failed librados call: the function and object, and librados's errno (positive). */
export class RadosError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    object?: string,
  ) {
    super(`${call}${object === undefined ? "" : ` ${object}`}: ${errnoName(errno)}`);
    this.name = "RadosError";
  }
}

function errnoName(errno: number): string {
  const names: Record<number, string> = {
    1: "EPERM (operation not permitted)",
    2: "ENOENT (no such object)",
    5: "EIO",
    13: "EACCES (permission denied)",
    22: "EINVAL (invalid argument)",
    28: "ENOSPC (no space left)",
    34: "ERANGE",
    75: "EOVERFLOW",
    95: "EOPNOTSUPP",
    110: "ETIMEDOUT (timed out)",
    122: "EDQUOT (quota exceeded)",
    125: "ECANCELED (a condition failed)",
  };
  return names[errno] ?? `errno ${errno}`;
}

/** One omap key and its value. */
export interface OmapEntry {
  key: string;
  value: Buffer;
}

/** A compound write on one object (librados's write op), built then run by `IoContext.operate`. */
export interface WriteOp {
  /** Create the object if missing (never fails on an existing one). */
  create?: boolean;
  /** Fail with ERANGE/EOVERFLOW unless the object is at this version. */
  assertVersion?: bigint;
  /** Fail with ECANCELED unless each key holds this value ("" matches a missing key). */
  omapEqual?: ReadonlyArray<[string, string]>;
  omapSet?: ReadonlyArray<[string, string]>;
  omapRemove?: readonly string[];
  /** Remove the object. */
  remove?: boolean;
}

/** The omap read: a page of keys, and the object's version. */
export interface OmapPage {
  entries: OmapEntry[];
  more: boolean;
  version: bigint;
}

/** What the binding loads from librados. */
interface Native {
  koffi: Koffi;
  create: NativeFunction;
  confReadFile: NativeFunction;
  confSet: NativeFunction;
  confGet: NativeFunction;
  connect: NativeFunction;
  shutdown: NativeFunction;
  ioctxCreate: NativeFunction;
  ioctxDestroy: NativeFunction;
  completionCreate: NativeFunction;
  completionReturn: NativeFunction;
  completionVersion: NativeFunction;
  completionRelease: NativeFunction;
  aioWrite: NativeFunction;
  aioWriteFull: NativeFunction;
  aioRead: NativeFunction;
  aioRemove: NativeFunction;
  writeOpCreate: NativeFunction;
  writeOpRelease: NativeFunction;
  writeOpCreateObject: NativeFunction;
  writeOpAssertVersion: NativeFunction;
  writeOpOmapCmp: NativeFunction;
  writeOpOmapSet: NativeFunction;
  writeOpOmapRemove: NativeFunction;
  writeOpRemove: NativeFunction;
  aioWriteOpOperate: NativeFunction;
  readOpCreate: NativeFunction;
  readOpRelease: NativeFunction;
  readOpOmapGetVals: NativeFunction;
  readOpOmapGetByKeys: NativeFunction;
  aioReadOpOperate: NativeFunction;
  omapNext: NativeFunction;
  omapEnd: NativeFunction;
  callback: unknown;
}

let native: Native | undefined;
const pending = new Map<bigint, (completion: Pointer) => void>();
let nextId = 1n;
let keepAlive: NodeJS.Timeout | undefined;
let inFlight = 0;
const waiting: Array<() => void> = [];

/**
 * Loads librados through koffi (once per process). Throws a plain Error when librados2 is not
 * installed; the driver's entry turns it into an error naming the Debian package.
 */
export function loadLibrados(koffi: Koffi): void {
  if (native !== undefined) return;
  const lib = koffi.load("librados.so.2");
  const proto = koffi.proto("void rados_callback_t(void *completion, void *arg)");
  const fn = (signature: string) => lib.func(signature);
  native = {
    koffi,
    create: fn("int rados_create(_Out_ void **cluster, const char *id)"),
    confReadFile: fn("int rados_conf_read_file(void *cluster, const char *path)"),
    confSet: fn("int rados_conf_set(void *cluster, const char *option, const char *value)"),
    confGet: fn(
      "int rados_conf_get(void *cluster, const char *option, _Out_ uint8_t *buf, size_t len)",
    ),
    connect: fn("int rados_connect(void *cluster)"),
    shutdown: fn("void rados_shutdown(void *cluster)"),
    ioctxCreate: fn("int rados_ioctx_create(void *cluster, const char *pool, _Out_ void **io)"),
    ioctxDestroy: fn("void rados_ioctx_destroy(void *io)"),
    completionCreate: fn(
      "int rados_aio_create_completion2(void *arg, rados_callback_t *cb, _Out_ void **pc)",
    ),
    completionReturn: fn("int rados_aio_get_return_value(void *c)"),
    completionVersion: fn("uint64_t rados_aio_get_version(void *c)"),
    completionRelease: fn("void rados_aio_release(void *c)"),
    aioWrite: fn(
      "int rados_aio_write(void *io, const char *oid, void *c, const void *buf, size_t len, uint64_t off)",
    ),
    aioWriteFull: fn(
      "int rados_aio_write_full(void *io, const char *oid, void *c, const void *buf, size_t len)",
    ),
    aioRead: fn(
      "int rados_aio_read(void *io, const char *oid, void *c, void *buf, size_t len, uint64_t off)",
    ),
    aioRemove: fn("int rados_aio_remove(void *io, const char *oid, void *c)"),
    writeOpCreate: fn("void *rados_create_write_op()"),
    writeOpRelease: fn("void rados_release_write_op(void *op)"),
    writeOpCreateObject: fn(
      "void rados_write_op_create(void *op, int exclusive, const char *category)",
    ),
    writeOpAssertVersion: fn("void rados_write_op_assert_version(void *op, uint64_t ver)"),
    writeOpOmapCmp: fn(
      "void rados_write_op_omap_cmp(void *op, const char *key, uint8_t cmp, const char *val, size_t len, void *prval)",
    ),
    writeOpOmapSet: fn(
      "void rados_write_op_omap_set(void *op, const char **keys, const char **vals, const size_t *lens, size_t num)",
    ),
    writeOpOmapRemove: fn(
      "void rados_write_op_omap_rm_keys(void *op, const char **keys, size_t num)",
    ),
    writeOpRemove: fn("void rados_write_op_remove(void *op)"),
    aioWriteOpOperate: fn(
      "int rados_aio_write_op_operate(void *op, void *io, void *c, const char *oid, void *mtime, int flags)",
    ),
    readOpCreate: fn("void *rados_create_read_op()"),
    readOpRelease: fn("void rados_release_read_op(void *op)"),
    readOpOmapGetVals: fn(
      "void rados_read_op_omap_get_vals2(void *op, const char *after, const char *prefix, uint64_t max, void *iter, void *more, void *prval)",
    ),
    readOpOmapGetByKeys: fn(
      "void rados_read_op_omap_get_vals_by_keys(void *op, const char **keys, size_t num, void *iter, void *prval)",
    ),
    aioReadOpOperate: fn(
      "int rados_aio_read_op_operate(void *op, void *io, void *c, const char *oid, int flags)",
    ),
    omapNext: fn(
      "int rados_omap_get_next2(void *iter, _Out_ void **key, _Out_ void **val, _Out_ size_t *klen, _Out_ size_t *vlen)",
    ),
    omapEnd: fn("void rados_omap_get_end(void *iter)"),
    callback: koffi.register((completion: Pointer, arg: Pointer) => {
      const done = pending.get(arg);
      pending.delete(arg);
      done?.(completion);
    }, koffi.pointer(proto)),
  };
}

function lib(): Native {
  if (native === undefined) throw new Error("librados is not loaded");
  return native;
}

async function slot(): Promise<void> {
  if (inFlight < MAX_IN_FLIGHT) {
    inFlight += 1;
    return;
  }
  await new Promise<void>((resolve) => waiting.push(resolve));
}

function release(): void {
  const next = waiting.shift();
  if (next !== undefined) next();
  else inFlight -= 1;
}

/**
 * Runs one asynchronous librados call: `start` queues it with a fresh completion. Resolves with
 * the call's return value and the object version it saw; rejects with a RadosError on a negative
 * return. `keep` is held until the call completes (buffers librados reads from or writes to).
 */
async function aio(
  call: string,
  object: string,
  start: (completion: Pointer) => number,
  keep?: unknown,
): Promise<{ value: number; version: bigint }> {
  await slot();
  const n = lib();
  const id = nextId++;
  const out: [Pointer | null] = [null];
  n.completionCreate(id, n.callback, out);
  const completion = out[0]!;
  keepAlive ??= setInterval(() => {}, 1 << 30);
  try {
    return await new Promise((resolve, reject) => {
      pending.set(id, () => {
        const value = n.completionReturn(completion) as number;
        const version = BigInt(n.completionVersion(completion) as number | bigint);
        void keep;
        if (value < 0) reject(new RadosError(call, -value, object));
        else resolve({ value, version });
      });
      const queued = start(completion);
      if (queued < 0) {
        pending.delete(id);
        reject(new RadosError(call, -queued, object));
      }
    });
  } finally {
    n.completionRelease(completion);
    release();
    if (pending.size === 0 && keepAlive !== undefined) {
      clearInterval(keepAlive);
      keepAlive = undefined;
    }
  }
}

/** A connection to a cluster as one user. */
export class RadosCluster {
  private constructor(private handle: Pointer | null) {}

  /**
   * Connects as `username` (librados's id: "admin" for client.admin), reading `confFile` (null:
   * librados's search: $CEPH_CONF, /etc/ceph/ceph.conf, ~/.ceph/config, ./ceph.conf). Each of
   * `defaults` ([option, Ceph's default, ours]) is set to ours unless the file changed it; `after`
   * is set after the file.
   */
  static async connect(options: {
    username: string;
    confFile: string | null;
    defaults: ReadonlyArray<[string, string, string]>;
    after: Record<string, string>;
  }): Promise<RadosCluster> {
    const n = lib();
    const out: [Pointer | null] = [null];
    check("rados_create", n.create(out, options.username) as number);
    const cluster = new RadosCluster(out[0]);
    try {
      const read = n.confReadFile(cluster.handle, options.confFile) as number;
      if (read < 0) throw new RadosError("rados_conf_read_file", -read, options.confFile ?? "");
      for (const [key, cephDefault, ours] of options.defaults) {
        if (cluster.get(key) === cephDefault) cluster.set(key, ours);
      }
      for (const [key, value] of Object.entries(options.after)) cluster.set(key, value);
      const connected = await new Promise<number>((resolve, reject) => {
        n.connect.async(cluster.handle, (error: unknown, value: number) =>
          error
            ? reject(error instanceof Error ? error : new Error("rados_connect failed"))
            : resolve(value),
        );
      });
      check("rados_connect", connected);
      return cluster;
    } catch (error) {
      cluster.shutdown();
      throw error;
    }
  }

  private get(option: string): string {
    const buffer = Buffer.alloc(256);
    check(`rados_conf_get ${option}`, lib().confGet(this.handle, option, buffer, 256) as number);
    return buffer.toString("utf8", 0, buffer.indexOf(0));
  }

  private set(option: string, value: string): void {
    check(`rados_conf_set ${option}`, lib().confSet(this.handle, option, value) as number);
  }

  /** An I/O context on `pool`; RadosError ENOENT when there is no such pool. */
  openPool(pool: string): IoContext {
    const out: [Pointer | null] = [null];
    check(`rados_ioctx_create`, lib().ioctxCreate(this.handle, pool, out) as number, pool);
    return new IoContext(out[0]);
  }

  /** Disconnects (blocks briefly; called once when the driver closes). */
  shutdown(): void {
    if (this.handle === null) return;
    lib().shutdown(this.handle);
    this.handle = null;
  }
}

function check(call: string, value: number, object?: string): void {
  if (value < 0) throw new RadosError(call, -value, object);
}

/** Object operations in one pool, all asynchronous. */
export class IoContext {
  constructor(private handle: Pointer | null) {}

  private io(): Pointer {
    if (this.handle === null) throw new Error("the pool's I/O context is closed");
    return this.handle;
  }

  /** Writes `data` at `offset` of `object` (created if missing). */
  async write(object: string, data: Uint8Array, offset: number): Promise<void> {
    const io = this.io();
    await aio(
      "rados_aio_write",
      object,
      (c) => lib().aioWrite(io, object, c, data, data.byteLength, offset) as number,
      data,
    );
  }

  /** Replaces `object`'s content with `data`. */
  async writeFull(object: string, data: Uint8Array): Promise<void> {
    const io = this.io();
    await aio(
      "rados_aio_write_full",
      object,
      (c) => lib().aioWriteFull(io, object, c, data, data.byteLength) as number,
      data,
    );
  }

  /** Up to `length` bytes of `object` from `offset` (fewer at its end); ENOENT if missing. */
  async read(object: string, offset: number, length: number): Promise<Buffer> {
    const io = this.io();
    const buffer = Buffer.allocUnsafe(length);
    const { value } = await aio(
      "rados_aio_read",
      object,
      (c) => lib().aioRead(io, object, c, buffer, length, offset) as number,
      buffer,
    );
    return value === length ? buffer : buffer.subarray(0, value);
  }

  /** Removes `object`; ENOENT if missing. */
  async remove(object: string): Promise<void> {
    const io = this.io();
    await aio("rados_aio_remove", object, (c) => lib().aioRemove(io, object, c) as number);
  }

  /** Runs a compound write on `object`, atomically. */
  async operate(object: string, op: WriteOp): Promise<void> {
    const n = lib();
    const io = this.io();
    const handle = n.writeOpCreate() as Pointer;
    try {
      if (op.create) n.writeOpCreateObject(handle, 0, null);
      if (op.assertVersion !== undefined) n.writeOpAssertVersion(handle, op.assertVersion);
      for (const [key, value] of op.omapEqual ?? []) {
        n.writeOpOmapCmp(handle, key, 1, value, Buffer.byteLength(value), null);
      }
      if (op.omapSet !== undefined && op.omapSet.length > 0) {
        n.writeOpOmapSet(
          handle,
          op.omapSet.map(([key]) => key),
          op.omapSet.map(([, value]) => value),
          op.omapSet.map(([, value]) => Buffer.byteLength(value)),
          op.omapSet.length,
        );
      }
      if (op.omapRemove !== undefined && op.omapRemove.length > 0) {
        n.writeOpOmapRemove(handle, op.omapRemove, op.omapRemove.length);
      }
      if (op.remove) n.writeOpRemove(handle);
      await aio(
        "rados_aio_write_op_operate",
        object,
        (c) => n.aioWriteOpOperate(handle, io, c, object, null, 0) as number,
      );
    } finally {
      n.writeOpRelease(handle);
    }
  }

  /**
   * A page of `object`'s omap, sorted by key: up to `max` keys after `after` ("" from the start),
   * or exactly the keys `keys` when given. A missing object reads as empty (version 0).
   */
  async omap(
    object: string,
    after: string,
    max: number,
    keys?: readonly string[],
  ): Promise<OmapPage> {
    const n = lib();
    const { koffi } = n;
    const io = this.io();
    const handle = n.readOpCreate() as Pointer;
    // Out values librados writes when the operation completes: native memory that does not move.
    const out = koffi.alloc("uint8_t", 24) as Pointer;
    try {
      koffi.encode(out, 0, "uint64_t", 0);
      koffi.encode(out, 8, "uint8_t", 0);
      if (keys !== undefined) n.readOpOmapGetByKeys(handle, keys, keys.length, out, out + 16n);
      else n.readOpOmapGetVals(handle, after, "", max, out, out + 8n, out + 16n);
      let version: bigint;
      try {
        ({ version } = await aio(
          "rados_aio_read_op_operate",
          object,
          (c) => n.aioReadOpOperate(handle, io, c, object, 0) as number,
        ));
      } catch (error) {
        if (error instanceof RadosError && error.errno === Errno.ENOENT) {
          return { entries: [], more: false, version: 0n };
        }
        throw error;
      }
      const iterator = koffi.decode(out, 0, "void *") as Pointer | null;
      const more = (koffi.decode(out, 8, "uint8_t") as number) !== 0;
      const entries: OmapEntry[] = [];
      if (iterator !== null && iterator !== 0n) {
        try {
          for (;;) {
            const key: [Pointer | null] = [null];
            const value: [Pointer | null] = [null];
            const keyLength: [number] = [0];
            const valueLength: [number] = [0];
            check(
              "rados_omap_get_next2",
              n.omapNext(iterator, key, value, keyLength, valueLength) as number,
            );
            if (key[0] === null || BigInt(key[0]) === 0n) break;
            // Copies: the iterator's memory is freed by rados_omap_get_end.
            const copy = (pointer: Pointer, length: number) =>
              length === 0
                ? Buffer.alloc(0)
                : Buffer.from(new Uint8Array(koffi.view(pointer, length)));
            entries.push({
              key: copy(key[0], Number(keyLength[0])).toString("utf8"),
              value: copy(value[0]!, Number(valueLength[0])),
            });
          }
        } finally {
          n.omapEnd(iterator);
        }
      }
      return { entries, more, version };
    } finally {
      n.readOpRelease(handle);
      koffi.free(out);
    }
  }

  /** Closes the context (once, when the driver closes). */
  close(): void {
    if (this.handle === null) return;
    lib().ioctxDestroy(this.handle);
    this.handle = null;
  }
}
