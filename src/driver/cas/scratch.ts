// The CAS driver's scratch area: a filesystem driver whose errors carry the CAS driver's name, as
// the contract asks of every error a driver returns (the scratch area is the CAS driver's own).

import { StorageDriverError, type FileWriter, type StorageDriver } from "../driver.js";

function renamed<T>(error: T, name: string): T {
  if (error instanceof StorageDriverError && error.driverName !== name) {
    Object.defineProperty(error, "driverName", { value: name });
    error.message = `${name}: ${error.message.slice(error.message.indexOf(": ") + 2)}`;
  }
  return error;
}

function wrapWriter(writer: FileWriter, name: string): FileWriter {
  const call = <T>(promise: Promise<T>): Promise<T> =>
    promise.catch((error: unknown) => {
      throw renamed(error, name);
    });
  return {
    write: (chunk) => call(writer.write(chunk)),
    get size() {
      return writer.size;
    },
    close: () => call(writer.close()),
    cancel: () => call(writer.cancel()),
    commit: (options) => call(writer.commit(options)),
  };
}

/** `driver` with every error it gives (rejections, stream and writer errors) named `name`. */
export function scratchArea(driver: StorageDriver, name: string): StorageDriver {
  return new Proxy(driver, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function" || property === "constructor") return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (!(result instanceof Promise)) return result;
        return result.then(
          (resolved: unknown) => {
            if (property === "writer") return wrapWriter(resolved as FileWriter, name);
            if (property === "reader") {
              const stream = resolved as NodeJS.ReadableStream;
              stream.prependListener("error", (error: unknown) => renamed(error, name));
            }
            return resolved;
          },
          (error: unknown) => {
            throw renamed(error, name);
          },
        );
      };
    },
  });
}
