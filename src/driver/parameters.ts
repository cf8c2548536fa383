// Reading a driver's parameters. Values arrive from YAML (typed) or from environment overrides
// (always strings), so booleans and numbers are accepted in both forms. Every failure is an
// InvalidParameterError naming the driver, the parameter and the bad value.

import { InvalidParameterError, type DriverParameters } from "./driver.js";

/** Reads typed parameters of one driver. */
export class ParameterReader {
  constructor(
    private readonly driverName: string,
    private readonly parameters: DriverParameters,
  ) {}

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
    const value = this.raw(key);
    if (value === undefined) return undefined;
    if (typeof value !== "string" && typeof value !== "number") {
      throw new InvalidParameterError(
        this.driverName,
        key,
        `must be a string, got ${JSON.stringify(value)}`,
      );
    }
    return String(value);
  }

  /** A boolean: true/false, or the strings "true"/"false" (any case). */
  boolean(key: string, fallback: boolean): boolean {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    if (typeof value === "boolean") return value;
    if (typeof value === "string") {
      const lower = value.trim().toLowerCase();
      if (lower === "true") return true;
      if (lower === "false") return false;
    }
    throw new InvalidParameterError(
      this.driverName,
      key,
      `must be true or false, got ${JSON.stringify(value)}`,
    );
  }

  /** A whole number at least `min` (and at most `max`): a number or a numeric string. */
  integer(key: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.raw(key);
    if (value === undefined) return fallback;
    const parsed =
      typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
      throw new InvalidParameterError(
        this.driverName,
        key,
        `must be a whole number ${range}, got ${JSON.stringify(value)}`,
      );
    }
    return parsed;
  }

  /** One of `choices`. */
  oneOf<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const value = this.optionalString(key);
    if (value === undefined) return fallback;
    if (!(choices as readonly string[]).includes(value)) {
      throw new InvalidParameterError(
        this.driverName,
        key,
        `must be one of ${choices.join(", ")}, got ${JSON.stringify(value)}`,
      );
    }
    return value as T;
  }
}
