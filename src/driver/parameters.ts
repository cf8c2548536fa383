// Reading typed values out of a YAML tree. Values arrive from YAML (typed) or from environment
// overrides (always strings), so booleans and numbers are accepted in both forms. One set of rules
// serves the drivers' parameters (ParameterReader, which throws an InvalidParameterError naming the
// driver, the parameter and the bad value) and the config's own keys (src/config, which collects
// every problem with its key before reporting them together).

import { InvalidParameterError, type DriverParameters } from "./driver.js";

/** YAML 1.1's boolean words (Go's yaml.v2, which reads distribution's config), lower-cased. */
const yaml11Booleans: ReadonlyMap<string, boolean> = new Map([
  ...["true", "yes", "y", "on"].map((word): [string, boolean] => [word, true]),
  ...["false", "no", "n", "off"].map((word): [string, boolean] => [word, false]),
]);

/**
 * The value rules. Null and absent values give the fallback; each bad value is passed to `report`
 * with its key and a message saying what was expected, and the fallback is returned (unless
 * `report` throws).
 */
export abstract class ValueReader {
  /** Called once for each bad value. */
  protected abstract report(key: string, message: string): void;

  /** A string (a number is taken as its text); undefined when absent. */
  string(value: unknown, key: string): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value === "string") return value;
    if (typeof value === "number") return String(value);
    this.report(key, `must be a string, got ${JSON.stringify(value)}`);
    return undefined;
  }

  /**
   * A boolean: true/false, or a string of YAML 1.1's words for them (any case), as Go's yaml.v2
   * reads distribution's config: true/yes/y/on, false/no/n/off. "" counts as absent.
   */
  boolean(value: unknown, key: string, fallback: boolean): boolean {
    if (value === undefined || value === null || value === "") return fallback;
    if (typeof value === "boolean") return value;
    if (typeof value === "string") {
      const word = yaml11Booleans.get(value.trim().toLowerCase());
      if (word !== undefined) return word;
    }
    this.report(key, `must be true or false, got ${JSON.stringify(value)}`);
    return fallback;
  }

  /** A whole number at least `min` (and at most `max`): a number or a numeric string. */
  integer(
    value: unknown,
    key: string,
    fallback: number,
    min = 0,
    max = Number.MAX_SAFE_INTEGER,
  ): number {
    if (value === undefined || value === null || value === "") return fallback;
    const parsed =
      typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
      this.report(key, `must be a whole number ${range}, got ${JSON.stringify(value)}`);
      return fallback;
    }
    return parsed;
  }

  /** One of `choices`, whatever its case, returned as `choices` spells it; "" counts as absent. */
  oneOf<T extends string>(value: unknown, key: string, choices: readonly T[], fallback: T): T {
    if (value === undefined || value === null || value === "") return fallback;
    const text = typeof value === "string" ? value.trim().toLowerCase() : undefined;
    const choice = choices.find((candidate) => candidate.toLowerCase() === text);
    if (choice !== undefined) return choice;
    this.report(key, `must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`);
    return fallback;
  }
}

/** A ValueReader that throws the driver's InvalidParameterError at the first bad value. */
class DriverValueReader extends ValueReader {
  constructor(private readonly driverName: string) {
    super();
  }

  protected override report(key: string, message: string): never {
    throw new InvalidParameterError(this.driverName, key, message);
  }
}

/** Reads typed parameters of one driver; empty and null values count as missing. */
export class ParameterReader {
  private readonly values: DriverValueReader;

  constructor(
    private readonly driverName: string,
    private readonly parameters: DriverParameters,
  ) {
    this.values = new DriverValueReader(driverName);
  }

  private raw(key: string): unknown {
    const value = this.parameters?.[key];
    return value === null || value === "" ? undefined : value;
  }

  /** A required string. */
  requiredString(key: string): string {
    const value = this.optionalString(key);
    if (value === undefined) {
      throw new InvalidParameterError(this.driverName, key, "is required");
    }
    return value;
  }

  /** An optional string. */
  optionalString(key: string): string | undefined {
    return this.values.string(this.raw(key), key);
  }

  /** A boolean: true/false, or yes/no, on/off, y/n (any case, as a string too). */
  boolean(key: string, fallback: boolean): boolean {
    return this.values.boolean(this.raw(key), key, fallback);
  }

  /** A whole number at least `min` (and at most `max`): a number or a numeric string. */
  integer(key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    return this.values.integer(this.raw(key), key, fallback, min, max);
  }

  /** One of `choices`, whatever its case. */
  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    return this.values.oneOf(this.raw(key), key, choices, fallback);
  }
}
