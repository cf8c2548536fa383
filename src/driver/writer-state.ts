// The life of a FileWriter, shared by the drivers: open until exactly one of close, cancel or
// commit ends it; after that every call rejects with WriterClosedError.

import { WriterClosedError, type StoragePath } from "./driver.js";

/** How a writer ended. */
export type WriterEnd = "closed" | "cancelled" | "committed";

/** The open/ended state of one writer; drivers' writers hold one and ask it before each call. */
export class WriterState {
  private current: "open" | WriterEnd = "open";
  private busy = false;

  constructor(
    private readonly driverName: string,
    private readonly path: StoragePath,
  ) {}

  /** Rejects (throws WriterClosedError) unless the writer is open. */
  check(): void {
    if (this.current !== "open") {
      throw new WriterClosedError(this.driverName, this.path, this.current);
    }
  }

  /** Ends the writer now (before the work of `close`/`cancel`/`commit`); throws unless open. */
  end(state: WriterEnd): void {
    this.check();
    this.current = state;
  }

  /**
   * Runs `operation` while the writer is open, refusing a call that overlaps an earlier one, and
   * ends the writer with `ending` once it succeeds (a failed close or commit may be retried).
   */
  async run<T>(operation: () => Promise<T>, ending?: WriterEnd): Promise<T> {
    this.check();
    if (this.busy) {
      throw new WriterClosedError(
        this.driverName,
        this.path,
        "busy with an earlier call that has not resolved",
      );
    }
    this.busy = true;
    try {
      const result = await operation();
      if (ending !== undefined) this.current = ending;
      return result;
    } finally {
      this.busy = false;
    }
  }
}
