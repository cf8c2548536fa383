// The response class of Berth's HTTP server. Every response carries a few headers that do not
// depend on its handler (the request id, the API version); setting each with `setHeader` before
// the handler's `writeHead` costs a validation, a lower-cased copy and Node's slow merge of the two
// header sets on every request (2.7 against 1.2 µs for a blob HEAD's headers, docs/performance.md).
// Instead the headers are kept in a list and written with the handler's own in one `writeHead`.

import {
  ServerResponse,
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
} from "node:http";

type Headers = OutgoingHttpHeaders | OutgoingHttpHeader[];

/**
 * A ServerResponse that sends its preset headers (`preset`) ahead of whatever `writeHead`, or the
 * implicit header of a bare `end()`, is given. Give it to `http.createServer` as `ServerResponse`.
 */
export class ApiResponse<
  Request extends IncomingMessage = IncomingMessage,
> extends ServerResponse<Request> {
  /** The preset headers as name, value, name, value...; undefined while there are none. */
  private preset: (string | number | readonly string[])[] | undefined = undefined;

  /** Adds a header every status of this response is sent with. */
  presetHeader(name: string, value: string): void {
    if (this.preset === undefined) this.preset = [name, value];
    else this.preset.push(name, value);
  }

  override writeHead(statusCode: number, statusMessage?: string, headers?: Headers): this;
  override writeHead(statusCode: number, headers?: Headers): this;
  override writeHead(statusCode: number, second?: string | Headers, third?: Headers): this {
    const preset = this.preset;
    const message = typeof second === "string" ? second : undefined;
    const own = message === undefined ? (second as Headers | undefined) : third;
    if (preset === undefined) {
      return message === undefined
        ? super.writeHead(statusCode, own)
        : super.writeHead(statusCode, message, own);
    }
    // A flat list (Node's raw form): the fast path of writeHead when nothing was set before; with
    // headers set by setHeader, Node merges the list into them as it would an object.
    const all = preset;
    this.preset = undefined;
    if (Array.isArray(own)) {
      // Node takes [[name, value], ...] or a flat [name, value, ...] list.
      if (own.length > 0 && Array.isArray(own[0])) {
        for (const pair of own as unknown as [string, string][]) all.push(pair[0], pair[1]);
      } else {
        for (const item of own) all.push(item);
      }
    } else if (own !== undefined) {
      for (const name in own) {
        if (Object.hasOwn(own, name)) all.push(name, own[name] as string);
      }
    }
    const list = all as unknown as OutgoingHttpHeader[];
    return message === undefined
      ? super.writeHead(statusCode, list)
      : super.writeHead(statusCode, message, list);
  }
}

/** Adds a header to every status `res` is sent with: preset on an ApiResponse, else setHeader. */
export function presetHeader(res: ServerResponse, name: string, value: string): void {
  if (res instanceof ApiResponse) res.presetHeader(name, value);
  else res.setHeader(name, value);
}
