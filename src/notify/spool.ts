// Where an endpoint keeps the events it has not delivered yet: one file per event in a storage
// driver, named by a sequence number that gives their order, written when the event is queued
// and deleted once the endpoint has accepted it. After a restart the endpoint finds them there
// and delivers them first, in order.

import { PathNotFoundError, type StorageDriver } from "../driver/index.js";

/** The spooled events of one endpoint. */
export interface EventSpool {
  /** The sequence numbers of the spooled events, in order. */
  list(): Promise<number[]>;
  write(sequence: number, event: string): Promise<void>;
  /** The event, or undefined when it is no longer there. */
  read(sequence: number): Promise<string | undefined>;
  remove(sequence: number): Promise<void>;
}

/** Sequence numbers are zero-padded so that a listing sorts them as numbers. */
const width = 16;

/** A spool in `directory` of a storage driver (the registry's own, or a local filesystem one). */
export class DriverSpool implements EventSpool {
  constructor(
    private readonly driver: StorageDriver,
    private readonly directory: string,
  ) {}

  private path(sequence: number): string {
    return `${this.directory}/${String(sequence).padStart(width, "0")}`;
  }

  async list(): Promise<number[]> {
    let names: string[];
    try {
      names = await this.driver.list(this.directory);
    } catch (error) {
      if (error instanceof PathNotFoundError) return [];
      throw error;
    }
    return names
      .map((path) => path.slice(path.lastIndexOf("/") + 1))
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
  }

  async write(sequence: number, event: string): Promise<void> {
    await this.driver.putContent(this.path(sequence), Buffer.from(event, "utf8"));
  }

  async read(sequence: number): Promise<string | undefined> {
    try {
      return Buffer.from(await this.driver.getContent(this.path(sequence))).toString("utf8");
    } catch (error) {
      if (error instanceof PathNotFoundError) return undefined;
      throw error;
    }
  }

  async remove(sequence: number): Promise<void> {
    try {
      await this.driver.delete(this.path(sequence));
    } catch (error) {
      if (!(error instanceof PathNotFoundError)) throw error;
    }
  }
}
