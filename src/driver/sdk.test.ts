// Loading an optional SDK: a package that is not installed fails with the packages to install.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DriverErrorCode, InvalidStorageDriverError } from "./driver.js";
import { createS3Driver } from "./s3/index.js";
import { loadDriverModule } from "./sdk.js";
import { createAzureDriver } from "./azure/index.js";

/** A package name nothing installs, imported for real so that Node's own error is what is read. */
const ABSENT = "berth-test-absent-package";
const importAbsent = () => import(ABSENT);

describe("optional driver SDKs", () => {
  it("a missing package rejects with an error naming every package to install", async () => {
    await assert.rejects(
      loadDriverModule("s3", ["@aws-sdk/client-s3", ABSENT], importAbsent),
      (error: unknown) => {
        assert.ok(error instanceof InvalidStorageDriverError);
        assert.equal(error.code, DriverErrorCode.InvalidStorageDriver);
        assert.equal(
          error.message,
          `s3: the s3 driver needs the npm packages @aws-sdk/client-s3 ${ABSENT} (${ABSENT} is not installed): run \`npm install @aws-sdk/client-s3 ${ABSENT}\``,
        );
        return true;
      },
    );
  });

  it("other failures, and a missing module that is not the SDK, pass through", async () => {
    const broken = new SyntaxError("bad module");
    await assert.rejects(
      loadDriverModule("s3", ["@aws-sdk/client-s3"], () => Promise.reject(broken)),
      (error) => error === broken,
    );
    await assert.rejects(
      loadDriverModule("s3", ["@aws-sdk/client-s3"], importAbsent),
      (error: unknown) => (error as { code?: string }).code === "ERR_MODULE_NOT_FOUND",
    );
  });

  it("creating an s3 or azure driver without its SDK names the packages", async () => {
    // As Node reports a package that is not installed (checked against the real error above).
    const without = (name: string) => () =>
      Promise.reject(
        Object.assign(new Error(`Cannot find package '${name}' imported from /app/driver.js`), {
          code: "ERR_MODULE_NOT_FOUND",
        }),
      );
    const s3 = { bucket: "b", region: "us-east-1" };
    await assert.rejects(createS3Driver(s3, without("@aws-sdk/client-s3")), (error: unknown) => {
      assert.ok(error instanceof InvalidStorageDriverError);
      assert.match(error.message, /npm install @aws-sdk\/client-s3 @aws-sdk\/s3-request-presigner/);
      return true;
    });
    const azure = { accountname: "account", accountkey: "a2V5", container: "registry" };
    await assert.rejects(
      createAzureDriver(azure, without("@azure/storage-blob")),
      (error: unknown) => {
        assert.ok(error instanceof InvalidStorageDriverError);
        assert.match(error.message, /npm install @azure\/storage-blob/);
        return true;
      },
    );
  });
});
