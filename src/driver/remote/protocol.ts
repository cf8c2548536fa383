// The wire side of the out-of-process driver protocol: the service loaded from the .proto shipped
// in the package, its version and the rule for accepting a driver's, and how the contract's errors
// cross as gRPC statuses (a status code for any client, trailing metadata for the details).

import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import {
  AbortedError,
  BackendError,
  DriverErrorCode,
  InvalidOffsetError,
  InvalidParameterError,
  InvalidPathError,
  InvalidStorageDriverError,
  PathNotFoundError,
  StorageDriverError,
  UnsupportedMethodError,
  WriterClosedError,
  type FileInfo,
} from "../driver.js";
import { dataSerializer } from "./framing.js";
import {
  decodeCallReply,
  decodeCallRequest,
  encodeCallReply,
  encodeCallRequest,
} from "./call-codec.js";

/**
 * The protocol version Berth speaks, "major.minor"; a new minor only adds (1.1: LocalFile; 1.2:
 * local writes, VersionReply.local_root and the Writer's `local` messages; 1.3: the call stream,
 * `Calls`; 1.4: `Touch`; 1.5: several calls or replies in one message of the call stream,
 * `batch`; 1.6: PutContent's `unsynced` and a commit's `moved_next`, which an older driver
 * ignores, syncing as before; 1.7: a commit's `commit_to`, FileWriter.commitTo, sent only to a
 * driver of 1.7 or later; 1.8: a commit's `if_absent` and the reply's `kept`,
 * FileWriter.commitToIfAbsent, sent only to a driver of 1.8 or later). Berth accepts a driver of
 * the same major and a minor at least MIN_PROTOCOL_MINOR, and uses what a later minor added only
 * when the driver has it (a call it does not know answers UNIMPLEMENTED).
 */
export const PROTOCOL_VERSION = "1.8";

/** The oldest minor of PROTOCOL_VERSION's major that Berth still accepts: 1.0's drivers work. */
export const MIN_PROTOCOL_MINOR = 0;

/** The .proto file of the service, shipped in the package (proto/ at its root). */
export const PROTO_FILE = fileURLToPath(
  new URL("../../../../proto/berth-driver.proto", import.meta.url),
);

/** Environment variable naming the Unix socket a driver process must listen on. */
export const SOCKET_ENV = "BERTH_DRIVER_SOCKET";

/** The HTTP/2 flow-control window of both sides, per stream and per connection. */
export const FLOW_CONTROL_WINDOW = 8 * 1024 * 1024;

/** Channel and server options of both sides: large messages and a flow-control window of 8 MiB. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
  "grpc-node.flow_control_window": FLOW_CONTROL_WINDOW,
};

let loaded: grpc.ServiceClientConstructor | undefined;

/** How the service is loaded: the messages' objects as protobuf.js gives them to the code. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The StorageDriver service: a client constructor whose `service` the server adds. */
export function driverService(): grpc.ServiceClientConstructor {
  if (loaded !== undefined) return loaded;
  const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
  // Content messages skip protobuf.js's copy of their bytes (framing.ts).
  const methods = definition["berth.driver.v1.StorageDriver"] as protoLoader.ServiceDefinition;
  methods.Reader!.responseSerialize = dataSerializer(1, methods.Reader!.responseSerialize);
  methods.Writer!.requestSerialize = dataSerializer(2, methods.Writer!.requestSerialize);
  // The call stream's messages are encoded by hand (call-codec.ts): the same bytes.
  const calls = methods.Calls!;
  calls.requestSerialize = encodeCallRequest as (message: object) => Buffer;
  calls.requestDeserialize = decodeCallRequest;
  calls.responseSerialize = encodeCallReply as (message: object) => Buffer;
  calls.responseDeserialize = decodeCallReply;
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    berth: { driver: { v1: { StorageDriver: grpc.ServiceClientConstructor } } };
  };
  loaded = root.berth.driver.v1.StorageDriver;
  return loaded;
}

/**
 * The unary rpcs that also travel on the call stream (1.3's `Calls`), by the name of their case
 * in CallRequest's and CallReply's `oneof` (as proto-loader spells it).
 */
export const CALL_KINDS = {
  GetContent: "getContent",
  PutContent: "putContent",
  PutContentIfAbsent: "putContentIfAbsent",
  Stat: "stat",
  List: "list",
  Move: "move",
  Delete: "delete",
  RedirectURL: "redirectUrl",
  LocalFile: "localFile",
  Touch: "touch",
} as const;

/**
 * A call's kind on the call stream: a unary rpc's, or `write`, a whole writer in one call (which
 * has no rpc of its own).
 */
export type CallKind = (typeof CALL_KINDS)[keyof typeof CALL_KINDS] | "write";

/** The minor that added the call stream. */
export const CALL_STREAM_MINOR = 3;

/** The minor that added `Touch`. */
export const TOUCH_MINOR = 4;

/** The minor that added batches on the call stream (CallRequest's and CallReply's `batch`). */
export const CALL_BATCH_MINOR = 5;

/** The minor that added a commit's destination (WriterEnd's and WriteRequest's `commit_to`). */
export const COMMIT_TO_MINOR = 7;

/** The minor that added a commit unless stored (WriterEnd's and WriteRequest's `if_absent`). */
export const IF_ABSENT_MINOR = 8;

/** Metadata of a `Calls` stream: the protocol version Berth speaks (since 1.5). */
export const PROTOCOL_METADATA = "berth-protocol";

/** A failed call on the call stream, as it travels (CallError). */
export interface WireCallError {
  status: number;
  message: string;
  metadata: Record<string, string>;
}

/** `error` as the CallError a call on the call stream fails with (what toStatus gives a unary). */
export function toCallError(error: unknown): WireCallError {
  const { code, details, fields } = errorStatus(error);
  return { status: code, message: details, metadata: fields };
}

/**
 * A CallError as what a failed unary call says about itself (for fromStatus): no Error and no
 * grpc.Metadata are made for it, as an error answer (a path not found) is common.
 */
export function fromCallError(wire: WireCallError): RemoteFailure {
  const fields = wire.metadata ?? {};
  return {
    status: wire.status,
    details: wire.message,
    metadata: { get: (key) => (typeof fields[key] === "string" ? [fields[key]] : []) },
  };
}

/** A FileInfo as it travels. */
export interface WireFileInfo {
  path: string;
  size: number;
  modTimeMs: number;
  isDir: boolean;
}

export function toWireInfo(info: FileInfo): WireFileInfo {
  return {
    path: info.path,
    size: info.size,
    modTimeMs: info.modTime.getTime(),
    isDir: info.isDir,
  };
}

export function fromWireInfo(info: WireFileInfo): FileInfo {
  return {
    path: info.path,
    size: Number(info.size),
    modTime: new Date(Number(info.modTimeMs)),
    isDir: info.isDir,
  };
}

/** Parses "major.minor"; undefined when it is not that. */
export function parseVersion(version: string): { major: number; minor: number } | undefined {
  const match = /^(\d+)\.(\d+)$/.exec(version);
  if (match === null) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]) };
}

/** Whether a driver speaking `version` (compatible) has what minor `minor` added. */
export function speaksMinor(version: string, minor: number): boolean {
  return (parseVersion(version)?.minor ?? 0) >= minor;
}

/** Why a driver speaking `version` cannot be used, or undefined when it can. */
export function incompatibility(version: string): string | undefined {
  const theirs = parseVersion(version);
  const ours = parseVersion(PROTOCOL_VERSION)!;
  if (theirs === undefined) return `its version ${JSON.stringify(version)} is not major.minor`;
  if (theirs.major !== ours.major || theirs.minor < MIN_PROTOCOL_MINOR) {
    return `it speaks protocol version ${version}, Berth speaks ${PROTOCOL_VERSION} (the major must be equal and the minor at least ${MIN_PROTOCOL_MINOR})`;
  }
  return undefined;
}

const STATUS_OF_CODE: Record<string, grpc.status> = {
  [DriverErrorCode.PathNotFound]: grpc.status.NOT_FOUND,
  [DriverErrorCode.InvalidPath]: grpc.status.INVALID_ARGUMENT,
  [DriverErrorCode.InvalidParameter]: grpc.status.INVALID_ARGUMENT,
  [DriverErrorCode.InvalidOffset]: grpc.status.OUT_OF_RANGE,
  [DriverErrorCode.UnsupportedMethod]: grpc.status.UNIMPLEMENTED,
  [DriverErrorCode.WriterClosed]: grpc.status.FAILED_PRECONDITION,
  [DriverErrorCode.InvalidStorageDriver]: grpc.status.FAILED_PRECONDITION,
  [DriverErrorCode.Aborted]: grpc.status.CANCELLED,
};

const CODE_OF_STATUS: Partial<Record<grpc.status, string>> = {
  [grpc.status.NOT_FOUND]: DriverErrorCode.PathNotFound,
  [grpc.status.INVALID_ARGUMENT]: DriverErrorCode.InvalidPath,
  [grpc.status.OUT_OF_RANGE]: DriverErrorCode.InvalidOffset,
  [grpc.status.UNIMPLEMENTED]: DriverErrorCode.UnsupportedMethod,
  [grpc.status.FAILED_PRECONDITION]: DriverErrorCode.WriterClosed,
  [grpc.status.CANCELLED]: DriverErrorCode.Aborted,
};

/** The message of a driver error without the "<driver>: " its constructor put in front. */
function bareMessage(error: Error): string {
  const driverName = (error as { driverName?: unknown }).driverName;
  const prefix = typeof driverName === "string" ? `${driverName}: ` : "";
  return prefix !== "" && error.message.startsWith(prefix)
    ? error.message.slice(prefix.length)
    : error.message;
}

/**
 * A driver error (or any error) as a status code, message and the fields of the trailing
 * metadata (berth-error-code, ...).
 */
function errorStatus(error: unknown): {
  code: grpc.status;
  details: string;
  fields: Record<string, string>;
} {
  if (!(error instanceof Error)) {
    return {
      code: grpc.status.UNKNOWN,
      details: String(error),
      fields: { "berth-error-code": DriverErrorCode.Backend },
    };
  }
  const properties = error as Partial<{
    code: string;
    driverName: string;
    path: string;
    offset: number;
    method: string;
    operation: string;
    parameter: string;
  }>;
  const code = error instanceof StorageDriverError ? error.code : DriverErrorCode.Backend;
  const fields: Record<string, string> = { "berth-error-code": code };
  if (typeof properties.driverName === "string")
    fields["berth-error-driver"] = properties.driverName;
  if (typeof properties.path === "string") fields["berth-error-path"] = properties.path;
  if (typeof properties.offset === "number")
    fields["berth-error-offset"] = String(properties.offset);
  const method = properties.method ?? properties.operation;
  if (typeof method === "string") fields["berth-error-method"] = method;
  if (typeof properties.parameter === "string")
    fields["berth-error-parameter"] = properties.parameter;
  // A backend error's own message names the operation; its cause says what went wrong.
  return {
    code: STATUS_OF_CODE[code] ?? grpc.status.UNKNOWN,
    details: bareMessage(error),
    fields,
  };
}

/** A driver error (or any error) as the status a server fails a call with. */
export function toStatus(error: unknown): Partial<grpc.StatusObject> {
  const { code, details, fields } = errorStatus(error);
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(fields)) metadata.set(key, value);
  return { code, details, metadata };
}

/** What a failed call says about itself, from its status and trailing metadata. */
export interface RemoteFailure {
  status: grpc.status;
  details: string;
  /** The trailing metadata (or what reads like it). */
  metadata?: Pick<grpc.Metadata, "get">;
}

function field(metadata: RemoteFailure["metadata"], key: string): string | undefined {
  const value = metadata?.get(key)[0];
  return typeof value === "string" ? value : undefined;
}

/**
 * The contract error for a call to `method` on `path` that failed remotely, attributed to
 * `driverName` (the name Berth knows the driver by); the remote driver's own name and message are
 * kept in the message or the cause.
 */
export function fromStatus(
  driverName: string,
  method: string,
  path: string | undefined,
  failure: RemoteFailure,
): StorageDriverError {
  const { metadata, details } = failure;
  const code = field(metadata, "berth-error-code") ?? CODE_OF_STATUS[failure.status];
  const errorPath = field(metadata, "berth-error-path") ?? path ?? "";
  switch (code) {
    case DriverErrorCode.PathNotFound:
      return new PathNotFoundError(driverName, errorPath);
    case DriverErrorCode.InvalidPath:
      return new InvalidPathError(driverName, errorPath);
    case DriverErrorCode.InvalidOffset:
      return new InvalidOffsetError(
        driverName,
        errorPath,
        Number(field(metadata, "berth-error-offset") ?? Number.NaN),
      );
    case DriverErrorCode.UnsupportedMethod:
      return new UnsupportedMethodError(
        driverName,
        field(metadata, "berth-error-method") ?? method,
        errorPath,
      );
    case DriverErrorCode.WriterClosed:
      return new WriterClosedError(driverName, errorPath, "ended");
    case DriverErrorCode.Aborted:
      return new AbortedError(driverName, method, errorPath);
    case DriverErrorCode.InvalidParameter: {
      const parameter = field(metadata, "berth-error-parameter") ?? "(unknown)";
      const message = details.startsWith(`parameter ${parameter}: `)
        ? details.slice(`parameter ${parameter}: `.length)
        : details;
      return new InvalidParameterError(driverName, parameter, message);
    }
    case DriverErrorCode.InvalidStorageDriver:
      return new InvalidStorageDriverError(driverName, details);
    default: {
      const remote = field(metadata, "berth-error-driver");
      const cause = new Error(remote === undefined ? details : `${remote}: ${details}`);
      return new BackendError(driverName, method, path, { cause });
    }
  }
}
