// The azure driver's FileWriter: content is staged as uncommitted blocks of the block blob at the
// writer's own path and published by one Put Block List.
//
// Why blocks on the target blob itself: uncommitted blocks are invisible to every read and listing,
// a committed blob already at the path keeps serving its old content until the commit, committing
// is a single request with no copy, and the uncommitted block list is readable by any process,
// which is what makes a close()d writer resumable elsewhere. What the service imposes:
//   - all block IDs staged on a blob must have the same length, so IDs are fixed-width;
//   - uncommitted blocks vanish when anything commits the blob (another writer, putContent, a move
//     onto the path) and after 7 days without a block being staged;
//   - there is no call to drop uncommitted blocks, so a cancel cannot erase them.
//
// Each writer session therefore names its blocks `<session><kind><seq>` (base64 of fixed-width
// text). The session is the creation time in milliseconds (hex) plus random bits, so the newest
// session sorts last; resuming takes the newest session found. Kinds: "d" data block number
// `seq`; "e" a 1-byte marker for a session closed with no data (a block cannot be empty); "x" a
// 1-byte tombstone left by cancel(), so that nothing of that session, or of older ones, resumes.

import { randomBytes } from "node:crypto";
import type { BlockBlobClient } from "@azure/storage-blob";
import { PathNotFoundError, type FileWriter, type StoragePath } from "../driver.js";
import { WriterState } from "../writer-state.js";
import { translateError } from "./errors.js";
import { DRIVER_NAME } from "./parameters.js";

type BlockKind = "d" | "e" | "x";

const SEQ_DIGITS = 6;
const BLOCK_ID_PATTERN = /^([0-9a-f]{20})([dex])([0-9]{6})$/;
const MARKER = Buffer.from([0]);

/** A new session name: 12 hex digits of milliseconds since 1970, then 8 random hex digits. */
function newSession(): string {
  return Date.now().toString(16).padStart(12, "0") + randomBytes(4).toString("hex");
}

function blockId(session: string, kind: BlockKind, seq: number): string {
  return Buffer.from(`${session}${kind}${String(seq).padStart(SEQ_DIGITS, "0")}`).toString(
    "base64",
  );
}

/** What a resumed writer continues from: its session, data blocks so far and their total size. */
interface ResumePoint {
  session: string;
  blocks: number;
  size: number;
}

/**
 * Finds the newest session among the uncommitted blocks of `blob`. Null when there is none to
 * resume: no uncommitted blocks, the newest session was cancelled, or it has neither data from
 * block 0 on nor an empty-close marker. Data blocks after a gap (a stage that failed) are left out.
 */
async function findResumePoint(blob: BlockBlobClient): Promise<ResumePoint | null> {
  const list = await blob.getBlockList("uncommitted");
  const sessions = new Map<
    string,
    { data: Map<number, number>; empty: boolean; cancelled: boolean }
  >();
  for (const block of list.uncommittedBlocks ?? []) {
    const match = BLOCK_ID_PATTERN.exec(Buffer.from(block.name, "base64").toString("latin1"));
    if (match === null) continue;
    const [, session, kind, seq] = match as unknown as [string, string, BlockKind, string];
    let entry = sessions.get(session);
    if (entry === undefined) {
      entry = { data: new Map(), empty: false, cancelled: false };
      sessions.set(session, entry);
    }
    if (kind === "d") entry.data.set(Number(seq), block.size);
    else if (kind === "e") entry.empty = true;
    else entry.cancelled = true;
  }
  const newest = [...sessions.keys()].sort().at(-1);
  if (newest === undefined) return null;
  const entry = sessions.get(newest)!;
  if (entry.cancelled) return null;
  let blocks = 0;
  let size = 0;
  for (let length = entry.data.get(0); length !== undefined; length = entry.data.get(blocks)) {
    size += length;
    blocks++;
  }
  if (blocks === 0 && !entry.empty) return null;
  return { session: newest, blocks, size };
}

/** How the writer reaches the service: the blob, and a wrapper that creates a missing container. */
export interface WriterTarget {
  blob: BlockBlobClient;
  path: StoragePath;
  /** Runs a write request, creating the container first if the service says it is missing. */
  write<T>(request: () => Promise<T>): Promise<T>;
  /** The writer call's signal: it aborts a block that `write` is staging. */
  signal?: AbortSignal;
  /** The driver's own operations that commitTo publishes with. */
  objects: DriverObjects;
}

/** The driver's operations on whole blobs, for a writer publishing at another path. */
export interface DriverObjects {
  /** putContent: one Put Blob. */
  put(path: StoragePath, content: Uint8Array): Promise<void>;
  /** putContentIfAbsent: one Put Blob with `If-None-Match: *`; false when a blob is stored. */
  putIfAbsent(path: StoragePath, content: Uint8Array): Promise<boolean>;
  /** Whether a blob is stored at exactly `path`. */
  exists(path: StoragePath): Promise<boolean>;
  /** The driver's `move`: a server-side copy, then the source's deletion. */
  move(source: StoragePath, destination: StoragePath): Promise<void>;
}

/** Starts a new writer: an empty session that supersedes whatever earlier writers staged. */
export function startWriter(target: WriterTarget, blockSize: number): AzureBlockWriter {
  return new AzureBlockWriter(target, blockSize, { session: newSession(), blocks: 0, size: 0 });
}

/**
 * Resumes the newest close()d session at the target's path; PathNotFoundError if there is none,
 * or with `newIfMissing` a new writer that knows nothing at its path can be resumed (its small
 * content can then go straight to where commitTo publishes it).
 */
export async function resumeWriter(
  target: WriterTarget,
  blockSize: number,
  newIfMissing = false,
): Promise<AzureBlockWriter> {
  let point: ResumePoint | null;
  try {
    point = await findResumePoint(target.blob);
  } catch (error) {
    const translated = translateError(error, "writer", target.path);
    // No blob at the path at all (the service's 404): nothing to resume.
    if (!(newIfMissing && translated instanceof PathNotFoundError)) throw translated;
    point = null;
  }
  if (point === null) {
    if (!newIfMissing) throw new PathNotFoundError(DRIVER_NAME, target.path);
    return new AzureBlockWriter(
      target,
      blockSize,
      { session: newSession(), blocks: 0, size: 0 },
      true,
    );
  }
  return new AzureBlockWriter(target, blockSize, point);
}

/**
 * Buffers writes into one block of `blockSize` bytes at a time and stages each block as it fills,
 * so memory stays at one block however large the content.
 */
export class AzureBlockWriter implements FileWriter {
  private readonly state: WriterState;
  private readonly session: string;
  private buffer: Buffer | undefined;
  private filled = 0;
  /** Data blocks staged so far in this session, including those of earlier writers resumed. */
  private blocks: number;
  private written: number;

  constructor(
    private readonly target: WriterTarget,
    private readonly blockSize: number,
    from: ResumePoint,
    /**
     * Nothing at the writer's path could be resumed when it started: while it has staged no
     * block, its content may be published elsewhere without leaving anything resumable here.
     */
    private readonly fresh = false,
  ) {
    this.state = new WriterState(DRIVER_NAME, target.path);
    this.session = from.session;
    this.blocks = from.blocks;
    this.written = from.size;
  }

  get size(): number {
    return this.written;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.state.check();
    let offset = 0;
    while (offset < chunk.length) {
      // A block left full by a failed stage is retried here before more is accepted.
      if (this.filled === this.blockSize) await this.stageBuffered(this.target.signal);
      this.buffer ??= Buffer.allocUnsafe(this.blockSize);
      const take = Math.min(chunk.length - offset, this.blockSize - this.filled);
      this.buffer.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      this.written += take;
      offset += take;
    }
    if (this.filled === this.blockSize) await this.stageBuffered(this.target.signal);
  }

  async close(): Promise<void> {
    this.state.check();
    await this.stageBuffered();
    if (this.blocks === 0) await this.stage(blockId(this.session, "e", 0), MARKER, "close");
    this.state.end("closed");
    this.release();
  }

  async cancel(): Promise<void> {
    this.state.end("cancelled");
    this.release();
    // The staged blocks cannot be deleted (the service drops them at the next commit of this
    // blob, or after 7 days); the tombstone makes sure no later writer resumes them.
    await this.stage(blockId(this.session, "x", 0), MARKER, "cancel");
  }

  async commit(): Promise<void> {
    this.state.check();
    await this.commitHere();
    this.state.end("committed");
    this.release();
  }

  /**
   * Publishes the content at `destination` instead of the writer's path. Content held in memory
   * by a writer that started fresh (every small blob's upload) is one Put Blob there, where commit
   * then the driver's move took a Stage Block, a Put Block List, a copy and a delete. Content
   * already staged as blocks of this blob is committed here and moved as `move` does.
   */
  async commitTo(destination: StoragePath): Promise<void> {
    this.state.check();
    if (this.holdsAll()) {
      await this.target.objects.put(destination, this.held());
    } else {
      await this.commitHere();
      await this.target.objects.move(this.target.path, destination);
    }
    this.state.end("committed");
    this.release();
  }

  /**
   * commitTo, unless a blob is stored at `destination`: then the writer is cancelled and what is
   * stored stays. Content held in memory goes in one Put Blob with `If-None-Match: *`.
   */
  async commitToIfAbsent(destination: StoragePath): Promise<boolean> {
    this.state.check();
    if (this.holdsAll()) {
      const stored = await this.target.objects.putIfAbsent(destination, this.held());
      // Nothing was staged here: the writer leaves nothing behind either way.
      this.state.end(stored ? "committed" : "cancelled");
      this.release();
      return stored;
    }
    if (await this.target.objects.exists(destination)) {
      await this.cancel();
      return false;
    }
    await this.commitTo(destination);
    return true;
  }

  /** The writer started fresh and staged nothing: its whole content is in the buffer. */
  private holdsAll(): boolean {
    return this.fresh && this.blocks === 0;
  }

  private held(): Buffer {
    return this.buffer === undefined ? Buffer.alloc(0) : this.buffer.subarray(0, this.filled);
  }

  /** Stages what is buffered and commits the session's blocks at the writer's own path. */
  private async commitHere(): Promise<void> {
    await this.stageBuffered();
    const ids = Array.from({ length: this.blocks }, (_, seq) => blockId(this.session, "d", seq));
    try {
      // Put Block List, even with no blocks for empty content: it also drops every other
      // uncommitted block of the blob (older sessions, markers), here and on Azurite alike.
      await this.target.write(() => this.target.blob.commitBlockList(ids));
    } catch (error) {
      throw translateError(error, "commit", this.target.path);
    }
  }

  /**
   * Stages the buffered bytes as the next block. `signal` (write's only) aborts the request in
   * flight: the block is then not counted and its bytes stay buffered for a later close().
   */
  private async stageBuffered(signal?: AbortSignal): Promise<void> {
    if (this.filled === 0) return;
    await this.stage(
      blockId(this.session, "d", this.blocks),
      this.buffer!.subarray(0, this.filled),
      "write",
      signal,
    );
    this.blocks++;
    this.filled = 0;
  }

  private async stage(
    id: string,
    body: Buffer,
    operation: string,
    signal?: AbortSignal,
  ): Promise<void> {
    try {
      await this.target.write(() =>
        this.target.blob.stageBlock(id, body, body.length, { abortSignal: signal }),
      );
    } catch (error) {
      throw translateError(error, operation, this.target.path);
    }
  }

  /** Drops the buffer of a writer that has ended. */
  private release(): void {
    this.buffer = undefined;
    this.filled = 0;
  }
}
