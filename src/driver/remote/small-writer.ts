// Writers to a driver that serves the call stream (protocol 1.3) start small: their content is
// held here until they end, and then goes in one `write` call on the call stream (open, the
// content, close/cancel/commit), instead of a Writer rpc of its own. A small push's writers then
// cost a message each way instead of an HTTP/2 stream each. Content that grows past SMALL_WRITE
// goes to a Writer rpc as before: the writer opens one, sends what it held, and passes every later
// call on. Nothing is held across an end: close, cancel and commit resolve once the driver has
// done them, as with the rpc.

import { AbortedError, type CommitOptions, type FileWriter, type StoragePath } from "../driver.js";
import { WriterState } from "../writer-state.js";

/** Content a writer holds before it opens a Writer rpc. */
export const SMALL_WRITE = 64 * 1024;

/** How a writer ends. */
export type EndAction = "CLOSE" | "CANCEL" | "COMMIT";

/**
 * How a commit publishes: CommitOptions, or (protocol 1.7) at another path, as commitTo, and
 * (1.8) only where no file is stored there, as commitToIfAbsent.
 */
export interface EndOptions extends CommitOptions {
  /** FileWriter.commitTo's destination (sent as `commit_to`). */
  commitTo?: StoragePath;
  /** With commitTo: FileWriter.commitToIfAbsent (sent as `if_absent`). */
  ifAbsent?: boolean;
}

/**
 * Ends `writer` with `action`; a commit as `options` say (commitTo when it has a destination,
 * commitToIfAbsent with `ifAbsent`). True when a file stored at the destination was kept.
 */
export async function endWriter(
  writer: FileWriter,
  action: EndAction,
  options?: EndOptions,
): Promise<boolean> {
  const destination = options?.commitTo;
  if (action === "CLOSE") await writer.close();
  else if (action === "CANCEL") await writer.cancel();
  else if (destination === undefined) await writer.commit(options);
  else if (options?.ifAbsent === true) return !(await writer.commitToIfAbsent!(destination));
  else await writer.commitTo!(destination);
  return false;
}

/** A whole writer's end: its final size, and whether a stored file was kept (if_absent). */
export interface WholeWrite {
  size: number;
  kept: boolean;
}

/** What a SmallWriter needs of the driver (RemoteDriver). */
export interface SmallWriterHost {
  readonly name: string;
  /** A writer on a Writer rpc of its own. */
  streamWriter(path: StoragePath, append: boolean, signal?: AbortSignal): Promise<FileWriter>;
  /**
   * A whole writer in one call: opened, given `content`, ended with `action` (a commit with
   * `options`).
   */
  writeWhole(
    path: StoragePath,
    append: boolean,
    content: Uint8Array,
    action: EndAction,
    method?: string,
    options?: EndOptions,
  ): Promise<WholeWrite>;
}

const ENDINGS = { CLOSE: "closed", CANCEL: "cancelled", COMMIT: "committed" } as const;

/** A FileWriter holding its content until it ends, or until it grows past SMALL_WRITE. */
export class SmallWriter implements FileWriter {
  private readonly state: WriterState;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The Writer rpc's writer, once the content grew past SMALL_WRITE. */
  private inner: FileWriter | undefined;
  private ended: number | undefined;

  constructor(
    private readonly host: SmallWriterHost,
    private readonly path: StoragePath,
    private readonly append: boolean,
    /** The size it was opened at (of earlier sessions, when `append`). */
    private readonly base: number,
    private readonly signal: AbortSignal | undefined,
    /** Whether the driver commits to another path (protocol 1.7): commitTo is offered. */
    commitsTo: boolean,
    /** Whether it commits unless a file is stored there (1.8): commitToIfAbsent is offered. */
    commitsIfAbsent = false,
  ) {
    this.state = new WriterState(host.name, path);
    if (commitsTo) {
      this.commitTo = async (destination) => {
        await this.end("COMMIT", { commitTo: destination }, "writer.commitTo");
      };
    }
    if (commitsTo && commitsIfAbsent) {
      this.commitToIfAbsent = async (destination) =>
        !(await this.end(
          "COMMIT",
          { commitTo: destination, ifAbsent: true },
          "writer.commitToIfAbsent",
        ));
    }
  }

  /** Offered only when the driver has it (see the constructor): else commit and move. */
  readonly commitTo?: (path: StoragePath) => Promise<void>;

  /** Offered only when the driver has it (see the constructor): else a Stat first. */
  readonly commitToIfAbsent?: (path: StoragePath) => Promise<boolean>;

  get size(): number {
    return this.inner?.size ?? this.ended ?? this.base + this.heldBytes;
  }

  private abortedError(method: string): AbortedError | undefined {
    const signal = this.signal;
    return signal?.aborted
      ? new AbortedError(this.host.name, method, this.path, signal.reason)
      : undefined;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.inner !== undefined) return this.inner.write(chunk);
    return this.state.run(async () => {
      const aborted = this.abortedError("writer.write");
      if (aborted !== undefined) throw aborted;
      if (this.heldBytes + chunk.length <= SMALL_WRITE) {
        // A copy: the caller may reuse the chunk once this resolves.
        this.held.push(Buffer.from(chunk));
        this.heldBytes += chunk.length;
        return;
      }
      const inner = await this.host.streamWriter(this.path, this.append, this.signal);
      for (const held of this.held) await inner.write(held);
      this.held = [];
      this.heldBytes = 0;
      this.inner = inner;
      await inner.write(chunk);
    });
  }

  /** True when a file stored at the destination was kept (commitToIfAbsent). */
  private end(action: EndAction, options?: EndOptions, method?: string): Promise<boolean> {
    if (this.inner !== undefined) return endWriter(this.inner, action, options);
    return this.state.run(async () => {
      // An aborted writer publishes nothing; close and cancel still work.
      const aborted =
        action === "COMMIT" ? this.abortedError(method ?? "writer.commit") : undefined;
      if (aborted !== undefined) throw aborted;
      const content =
        action === "CANCEL" || this.heldBytes === 0
          ? Buffer.alloc(0)
          : this.held.length === 1
            ? this.held[0]!
            : Buffer.concat(this.held, this.heldBytes);
      const { size, kept } = await this.host.writeWhole(
        this.path,
        this.append,
        content,
        action,
        method,
        options,
      );
      this.ended = size;
      this.held = [];
      this.heldBytes = 0;
      return kept;
    }, ENDINGS[action]);
  }

  async close(): Promise<void> {
    await this.end("CLOSE");
  }

  async cancel(): Promise<void> {
    await this.end("CANCEL");
  }

  async commit(options?: CommitOptions): Promise<void> {
    await this.end("COMMIT", options);
  }
}
