// The driver factory: names register once, unknown names fail naming the known ones, and every
// driver created comes wrapped in DriverBase.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DriverBase } from "./base.js";
import { DriverErrorCode, InvalidParameterError, InvalidStorageDriverError } from "./driver.js";
import { createDriver, registerDriver, registeredDrivers } from "./factory.js";
import { InMemoryDriver } from "./inmemory/index.js";
import "./index.js";

describe("driver factory", () => {
  it("registers the built-in drivers when src/driver/index is imported", () => {
    const known = registeredDrivers();
    for (const name of ["inmemory", "filesystem"]) assert.ok(known.includes(name), name);
    assert.deepEqual(known, [...known].sort());
  });

  it("refuses a name registered twice, and a factory that is not a function", () => {
    registerDriver("factory-test-once", () => new InMemoryDriver());
    assert.throws(
      () => registerDriver("factory-test-once", () => new InMemoryDriver()),
      (error) =>
        error instanceof InvalidStorageDriverError &&
        error.code === DriverErrorCode.InvalidStorageDriver &&
        error.message.includes("factory-test-once"),
    );
    assert.throws(
      () => registerDriver("factory-test-bad", "not a function" as never),
      InvalidStorageDriverError,
    );
  });

  it("rejects an unknown name, naming the known drivers", async () => {
    const error = await createDriver("no-such-driver").catch((caught: unknown) => caught);
    assert.ok(error instanceof InvalidStorageDriverError);
    assert.equal(error.driverName, "no-such-driver");
    for (const name of registeredDrivers()) assert.ok(error.message.includes(name), name);
  });

  it("hands the parameters to the factory and wraps the driver it makes", async () => {
    let received: unknown;
    registerDriver("factory-test-params", async (parameters) => {
      received = parameters;
      return new InMemoryDriver();
    });
    const driver = await createDriver("factory-test-params", { answer: 42 });
    assert.deepEqual(received, { answer: 42 });
    assert.ok(driver instanceof DriverBase);
    assert.ok(driver.inner instanceof InMemoryDriver);
    await createDriver("factory-test-params");
    assert.deepEqual(received, {}, "no parameters: an empty object");
  });

  it("does not wrap a driver its factory wrapped already", async () => {
    registerDriver("factory-test-wrapped", () => new DriverBase(new InMemoryDriver()));
    const driver = await createDriver("factory-test-wrapped");
    assert.ok(driver.inner instanceof InMemoryDriver);
  });

  it("passes on the factory's parameter errors", async () => {
    registerDriver("factory-test-strict", () => {
      throw new InvalidParameterError("factory-test-strict", "region", "is required");
    });
    await assert.rejects(
      createDriver("factory-test-strict"),
      (error) => error instanceof InvalidParameterError && error.parameter === "region",
    );
  });
});
