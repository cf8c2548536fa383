// Over 400 lines: one wire format's encoder and decoder, each field written and read side by side.
// The call stream's messages (CallRequest and CallReply of proto/berth-driver.proto, with the small
// messages they carry) encoded and decoded by hand instead of by protobuf.js through
// proto-loader's object conversion (fromObject, encode, decode, toObject: about a tenth of each
// process's CPU per call, see docs/driver-protocol.md, "Cost"). The bytes are the protobuf encoding
// of the same messages, so a driver with generated code (another language, or protobuf.js) reads
// and writes them unchanged: call-codec.test.ts checks both directions against protobuf.js. The
// rest of the protocol keeps protobuf.js (and framing.ts for content).

import type { CallKind } from "./protocol.js";

/**
 * A call as Berth sends it: its id, its kind (or `cancel`) and the kind's request; `batch`, more
 * calls in the same message (protocol 1.5).
 */
export interface OutgoingCall {
  id: number;
  kind: CallKind | "cancel";
  body: object;
  batch?: OutgoingCall[];
}

/**
 * A call or a reply as read, or a reply as a driver sends it: its id, its kind (`cancel` only in a
 * call, `error` only in a reply; undefined when the message has a case this side does not know)
 * and the kind's message, every field present (proto3's defaults filled in).
 */
export interface CallMessage<Kind extends string = CallKind | "cancel" | "error"> {
  id: number;
  kind: Kind | undefined;
  body: Record<string, unknown>;
  /** More calls or replies in the same message, after this one (protocol 1.5). */
  batch?: CallMessage<Kind>[];
}

type Kind = CallKind | "cancel" | "error";

/** The field number of each kind in CallRequest's and CallReply's `oneof` (the same in both). */
const FIELD_OF: Record<Kind, number> = {
  getContent: 2,
  putContent: 3,
  putContentIfAbsent: 4,
  stat: 5,
  list: 6,
  move: 7,
  delete: 8,
  redirectUrl: 9,
  localFile: 10,
  write: 11,
  touch: 12,
  cancel: 15,
  error: 15,
};

const REQUEST_KIND: (CallKind | "cancel" | undefined)[] = [];
const REPLY_KIND: (CallKind | "error" | undefined)[] = [];
for (const [kind, field] of Object.entries(FIELD_OF) as [Kind, number][]) {
  if (kind !== "error") REQUEST_KIND[field] = kind;
  if (kind !== "cancel") REPLY_KIND[field] = kind;
}

/** The field number of CallRequest's and CallReply's `batch` (protocol 1.5). */
const BATCH = 16;

const VARINT = 0;
const FIXED64 = 1;
const LENGTH = 2;
const FIXED32 = 5;

/** WriterEnd.Action's values by number. */
const ACTIONS = ["ACTION_UNSPECIFIED", "CLOSE", "CANCEL", "COMMIT"];

const EMPTY = Buffer.alloc(0);

const TWO_32 = 2 ** 32;

/** Bytes of `value` as a varint (a negative int64 takes ten, in two's complement). */
function varintSize(value: number): number {
  if (value < 0) return 10;
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/**
 * Writes one message into a buffer sized beforehand from an upper bound (strings at three bytes a
 * character): every field number of these messages is below 16, so a tag is one byte; an embedded
 * message's length gets one byte and its bytes move along in the rare case that it needs more.
 */
class Encoder {
  private readonly buffer: Buffer;
  private at = 0;

  constructor(bound: number) {
    this.buffer = Buffer.allocUnsafe(bound);
  }

  done(): Buffer {
    return this.buffer.subarray(0, this.at);
  }

  varint(value: number): void {
    const buffer = this.buffer;
    if (value < 0) {
      // int64 in two's complement: ten bytes.
      let rest = BigInt.asUintN(64, BigInt(Math.trunc(value)));
      while (rest >= 0x80n) {
        buffer[this.at++] = Number(rest & 0x7fn) | 0x80;
        rest >>= 7n;
      }
      buffer[this.at++] = Number(rest);
      return;
    }
    while (value >= 0x80) {
      buffer[this.at++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buffer[this.at++] = value;
  }

  /** A varint field, left out when 0 (proto3's default). */
  integer(field: number, value: unknown): void {
    const number = Math.trunc(Number(value ?? 0));
    if (number === 0 || !Number.isFinite(number)) return;
    this.buffer[this.at++] = (field << 3) | VARINT;
    this.varint(number);
  }

  boolean(field: number, value: unknown): void {
    if (value !== true) return;
    this.buffer[this.at++] = (field << 3) | VARINT;
    this.buffer[this.at++] = 1;
  }

  /** A string field, left out when empty unless `always` (an element of a repeated field). */
  string(field: number, text: unknown, always = false): void {
    if (typeof text !== "string" || (text === "" && !always)) return;
    const start = this.begin(field);
    this.at += this.buffer.write(text, this.at, "utf8");
    this.end(start);
  }

  bytes(field: number, content: unknown): void {
    if (!(content instanceof Uint8Array) || content.length === 0) return;
    this.buffer[this.at++] = (field << 3) | LENGTH;
    this.varint(content.length);
    this.buffer.set(content, this.at);
    this.at += content.length;
  }

  /** Starts a length-delimited field; returns where its length byte is, for `end`. */
  begin(field: number): number {
    this.buffer[this.at++] = (field << 3) | LENGTH;
    return this.at++;
  }

  end(lengthAt: number): void {
    const length = this.at - lengthAt - 1;
    if (length < 0x80) {
      this.buffer[lengthAt] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.buffer.copyWithin(lengthAt + 1 + extra, lengthAt + 1, this.at);
    const end = this.at + extra;
    this.at = lengthAt;
    this.varint(length);
    this.at = end;
  }
}

/** An upper bound of the bytes of `text` as a string field (a tag, a length, UTF-8). */
function stringBound(text: unknown): number {
  return typeof text === "string" ? 11 + 3 * text.length : 0;
}

function bytesBound(content: unknown): number {
  return content instanceof Uint8Array ? 11 + content.length : 0;
}

type Body = Record<string, unknown>;

/** Writes the request of `kind` (PathRequest, PutContentRequest, ...) into `out`. */
function writeRequest(out: Encoder, kind: CallKind | "cancel", body: Body): void {
  switch (kind) {
    case "putContent":
    case "putContentIfAbsent":
      out.string(1, body.path);
      out.bytes(2, body.content);
      out.boolean(3, body.unsynced);
      return;
    case "move":
      out.string(1, body.sourcePath);
      out.string(2, body.destPath);
      return;
    case "redirectUrl":
      out.string(1, body.path);
      out.string(2, body.method);
      out.integer(3, body.expiresIn);
      return;
    case "write":
      out.string(1, body.path);
      out.boolean(2, body.append);
      out.bytes(3, body.content);
      out.integer(4, Math.max(ACTIONS.indexOf(body.action as string), 0));
      out.boolean(5, body.movedNext);
      out.string(6, body.commitTo);
      out.boolean(7, body.ifAbsent);
      return;
    case "cancel":
      return;
    default: // getContent, stat, list, delete, localFile, touch: PathRequest
      out.string(1, body.path);
  }
}

/** A CallRequest's bytes. */
export function encodeCallRequest(call: OutgoingCall): Buffer {
  const body = call.body as Body;
  const out = new Encoder(
    64 +
      stringBound(body.path) +
      stringBound(body.sourcePath) +
      stringBound(body.destPath) +
      stringBound(body.commitTo) +
      stringBound(body.method) +
      bytesBound(body.content),
  );
  out.integer(1, call.id);
  const start = out.begin(FIELD_OF[call.kind]);
  writeRequest(out, call.kind, body);
  out.end(start);
  return withBatch(out.done(), call.batch, encodeCallRequest);
}

/** `message` followed by `batch`'s messages, each as an element of the `batch` field. */
function withBatch<T>(message: Buffer, batch: T[] | undefined, encode: (entry: T) => Buffer) {
  if (batch === undefined || batch.length === 0) return message;
  const parts = [message];
  for (const entry of batch) {
    const bytes = encode(entry);
    const header = new Encoder(12);
    header.varint((BATCH << 3) | LENGTH);
    header.varint(bytes.length);
    parts.push(header.done(), bytes);
  }
  return Buffer.concat(parts);
}

/** Writes the reply of `kind` (ContentReply, FileInfo, CallError, ...) into `out`. */
function writeReply(out: Encoder, kind: CallKind | "error", body: Body): void {
  switch (kind) {
    case "getContent":
      out.bytes(1, body.content);
      return;
    case "putContentIfAbsent":
      out.boolean(1, body.stored);
      return;
    case "stat":
      out.string(1, body.path);
      out.integer(2, body.size);
      out.integer(3, body.modTimeMs);
      out.boolean(4, body.isDir);
      return;
    case "list":
      for (const path of (body.paths as string[] | undefined) ?? []) out.string(1, path, true);
      return;
    case "redirectUrl":
      out.string(1, body.url);
      return;
    case "localFile":
      out.string(1, body.file);
      out.integer(2, body.size);
      return;
    case "write":
      out.integer(1, body.size);
      out.boolean(2, body.kept);
      return;
    case "error":
      out.integer(1, body.status);
      out.string(2, body.message);
      for (const [key, value] of Object.entries((body.metadata ?? {}) as Body)) {
        const entry = out.begin(3);
        out.string(1, key, true);
        out.string(2, value, true);
        out.end(entry);
      }
      return;
    default: // putContent, move, delete, touch: Empty
  }
}

/** An upper bound of a reply's bytes. */
function replyBound(body: Body): number {
  let bound = 64 + stringBound(body.path) + stringBound(body.url) + stringBound(body.file);
  bound += stringBound(body.message) + bytesBound(body.content);
  for (const path of (body.paths as unknown[] | undefined) ?? []) bound += stringBound(path);
  for (const [key, value] of Object.entries((body.metadata ?? {}) as Body)) {
    bound += 11 + stringBound(key) + stringBound(value);
  }
  return bound;
}

/** A CallReply's bytes. */
export function encodeCallReply(reply: CallMessage<CallKind | "error">): Buffer {
  const kind = reply.kind;
  if (kind === undefined) throw new Error("a reply needs a kind");
  const out = new Encoder(replyBound(reply.body));
  out.integer(1, reply.id);
  const start = out.begin(FIELD_OF[kind]);
  writeReply(out, kind, reply.body);
  out.end(start);
  return withBatch(out.done(), reply.batch, encodeCallReply);
}

// ---- decoding ----

/** Reads fields from `buffer` between `at` and `end`. */
class Decoder {
  constructor(
    private readonly buffer: Buffer,
    public at: number,
    private readonly end: number,
  ) {}

  get more(): boolean {
    return this.at < this.end;
  }

  private byte(): number {
    if (this.at >= this.end) throw new Error("truncated message");
    return this.buffer[this.at++]!;
  }

  /** A varint as a number: int64's negatives from two's complement, beyond 2^53 not exact. */
  varint(): number {
    let byte = this.byte();
    if (byte < 0x80) return byte;
    let low = byte & 0x7f;
    for (let shift = 7; shift < 28; shift += 7) {
      byte = this.byte();
      low |= (byte & 0x7f) << shift;
      if (byte < 0x80) return low;
    }
    byte = this.byte();
    low = (low | ((byte & 0x0f) << 28)) >>> 0;
    let high = (byte & 0x7f) >> 4;
    for (let shift = 3; byte >= 0x80; shift += 7) {
      if (shift > 31) throw new Error("varint longer than 64 bits");
      byte = this.byte();
      high |= (byte & 0x7f) << shift;
    }
    high >>>= 0;
    if (high >= 0x80000000) return -((~high >>> 0) * TWO_32 + (~low >>> 0) + 1);
    return high * TWO_32 + low;
  }

  /** The next field's number and wire type, or undefined at the end. */
  tag(): [field: number, wire: number] | undefined {
    if (this.at >= this.end) return undefined;
    const tag = this.varint();
    return [Math.floor(tag / 8), tag & 7];
  }

  /** The extent of a length-delimited field's contents (`at` moves past it). */
  span(): [start: number, end: number] {
    const length = this.varint();
    const start = this.at;
    if (start + length > this.end) throw new Error("truncated message");
    this.at = start + length;
    return [start, start + length];
  }

  string(): string {
    const [start, end] = this.span();
    return this.buffer.toString("utf8", start, end);
  }

  /** A bytes field: a view of the message's buffer (as protobuf.js gives it), not a copy. */
  bytes(): Buffer {
    const [start, end] = this.span();
    return this.buffer.subarray(start, end);
  }

  /** A decoder of the embedded message here. */
  message(): Decoder {
    const [start, end] = this.span();
    return new Decoder(this.buffer, start, end);
  }

  skip(wire: number): void {
    if (wire === VARINT) this.varint();
    else if (wire === LENGTH) this.span();
    else if (wire === FIXED64 || wire === FIXED32) {
      this.at += wire === FIXED64 ? 8 : 4;
      if (this.at > this.end) throw new Error("truncated message");
    } else throw new Error(`unsupported wire type ${wire}`);
  }
}

type FieldType = "string" | "bytes" | "int" | "bool" | "strings";

/** A message's fields by number: their names and types. */
type Layout = Readonly<Record<number, readonly [name: string, type: FieldType]>>;

/**
 * Decodes a message of string, bytes, varint and bool fields laid out as `layout` into `body`,
 * which has every field's default (proto3's: empty, 0, false); repeated strings append.
 */
function decodeFields(input: Decoder, layout: Layout, body: Body): Body {
  for (let tag = input.tag(); tag !== undefined; tag = input.tag()) {
    const [number, wire] = tag;
    const field = layout[number];
    const type = field?.[1];
    if (field === undefined || wire !== (type === "int" || type === "bool" ? VARINT : LENGTH)) {
      input.skip(wire);
      continue;
    }
    const name = field[0];
    if (type === "string") body[name] = input.string();
    else if (type === "bytes") body[name] = input.bytes();
    else if (type === "int") body[name] = input.varint();
    else if (type === "bool") body[name] = input.varint() !== 0;
    else (body[name] as string[]).push(input.string());
  }
  return body;
}

const NONE: Layout = {};
const PATH_REQUEST: Layout = { 1: ["path", "string"] };
const PUT_CONTENT_REQUEST: Layout = {
  1: ["path", "string"],
  2: ["content", "bytes"],
  3: ["unsynced", "bool"],
};
const MOVE_REQUEST: Layout = { 1: ["sourcePath", "string"], 2: ["destPath", "string"] };
const REDIRECT_REQUEST: Layout = {
  1: ["path", "string"],
  2: ["method", "string"],
  3: ["expiresIn", "int"],
};
const WRITE_REQUEST: Layout = {
  1: ["path", "string"],
  2: ["append", "bool"],
  3: ["content", "bytes"],
  4: ["action", "int"],
  5: ["movedNext", "bool"],
  6: ["commitTo", "string"],
  7: ["ifAbsent", "bool"],
};
const CONTENT_REPLY: Layout = { 1: ["content", "bytes"] };
const STORED_REPLY: Layout = { 1: ["stored", "bool"] };
const FILE_INFO: Layout = {
  1: ["path", "string"],
  2: ["size", "int"],
  3: ["modTimeMs", "int"],
  4: ["isDir", "bool"],
};
const LIST_REPLY: Layout = { 1: ["paths", "strings"] };
const REDIRECT_REPLY: Layout = { 1: ["url", "string"] };
const LOCAL_FILE_REPLY: Layout = { 1: ["file", "string"], 2: ["size", "int"] };
const WRITER_SIZE: Layout = { 1: ["size", "int"], 2: ["kept", "bool"] };
const MAP_ENTRY: Layout = { 1: ["key", "string"], 2: ["value", "string"] };

function decodeRequest(kind: CallKind | "cancel", input: Decoder): Body {
  switch (kind) {
    case "putContent":
    case "putContentIfAbsent":
      return decodeFields(input, PUT_CONTENT_REQUEST, {
        path: "",
        content: EMPTY,
        unsynced: false,
      });
    case "move":
      return decodeFields(input, MOVE_REQUEST, { sourcePath: "", destPath: "" });
    case "redirectUrl":
      return decodeFields(input, REDIRECT_REQUEST, { path: "", method: "", expiresIn: 0 });
    case "write": {
      const body = decodeFields(input, WRITE_REQUEST, {
        path: "",
        append: false,
        content: EMPTY,
        action: 0,
        movedNext: false,
        commitTo: "",
        ifAbsent: false,
      });
      // As proto-loader gives enums (`enums: String`): the value's name, or its number if unknown.
      body.action = ACTIONS[body.action as number] ?? body.action;
      return body;
    }
    case "cancel":
      return decodeFields(input, NONE, {});
    default: // getContent, stat, list, delete, localFile, touch: PathRequest
      return decodeFields(input, PATH_REQUEST, { path: "" });
  }
}

function decodeReply(kind: CallKind | "error", input: Decoder): Body {
  switch (kind) {
    case "getContent":
      return decodeFields(input, CONTENT_REPLY, { content: EMPTY });
    case "putContentIfAbsent":
      return decodeFields(input, STORED_REPLY, { stored: false });
    case "stat":
      return decodeFields(input, FILE_INFO, { path: "", size: 0, modTimeMs: 0, isDir: false });
    case "list":
      return decodeFields(input, LIST_REPLY, { paths: [] });
    case "redirectUrl":
      return decodeFields(input, REDIRECT_REPLY, { url: "" });
    case "localFile":
      return decodeFields(input, LOCAL_FILE_REPLY, { file: "", size: 0 });
    case "write":
      return decodeFields(input, WRITER_SIZE, { size: 0, kept: false });
    case "error":
      return decodeError(input);
    default: // putContent, move, delete, touch: Empty
      return decodeFields(input, NONE, {});
  }
}

/** A CallError: its map field's entries are messages of key (1) and value (2). */
function decodeError(input: Decoder): Body {
  const metadata: Record<string, string> = {};
  const body: Body = { status: 0, message: "", metadata };
  for (let tag = input.tag(); tag !== undefined; tag = input.tag()) {
    const [number, wire] = tag;
    if (number === 1 && wire === VARINT) body.status = input.varint();
    else if (number === 2 && wire === LENGTH) body.message = input.string();
    else if (number === 3 && wire === LENGTH) {
      const entry = decodeFields(input.message(), MAP_ENTRY, { key: "", value: "" });
      metadata[entry.key as string] = entry.value as string;
    } else input.skip(wire);
  }
  return body;
}

/** Reads a CallRequest or a CallReply: its id and its oneof's case. */
function decodeCall<K extends Kind>(
  buffer: Buffer,
  kinds: (K | undefined)[],
  decodeBody: (kind: K, input: Decoder) => Body,
  /** Whether `batch` is read (in a message of the stream; not in an element of a batch). */
  batches = true,
): CallMessage<K> {
  const input = new Decoder(buffer, 0, buffer.length);
  const message: CallMessage<K> = { id: 0, kind: undefined, body: {} };
  for (let tag = input.tag(); tag !== undefined; tag = input.tag()) {
    const [number, wire] = tag;
    const kind = kinds[number];
    if (number === 1 && wire === VARINT) message.id = input.varint();
    else if (kind !== undefined && wire === LENGTH) {
      message.kind = kind;
      message.body = decodeBody(kind, input.message());
    } else if (number === BATCH && wire === LENGTH && batches) {
      const [start, end] = input.span();
      const entry = decodeCall(buffer.subarray(start, end), kinds, decodeBody, false);
      (message.batch ??= []).push(entry);
    } else input.skip(wire);
  }
  return message;
}

/** A CallRequest from its bytes. */
export function decodeCallRequest(buffer: Buffer): CallMessage<CallKind | "cancel"> {
  return decodeCall(buffer, REQUEST_KIND, decodeRequest);
}

/** A CallReply from its bytes. */
export function decodeCallReply(buffer: Buffer): CallMessage<CallKind | "error"> {
  return decodeCall(buffer, REPLY_KIND, decodeReply);
}
