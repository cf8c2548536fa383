// A pass over JSON bytes before JSON.parse, so that a manifest cannot stall the event loop: parsing
// is synchronous, and its cost grows with nesting and with the number of values, not with size
// alone. A 4 MiB document of nested arrays took 0.5-4 s in JSON.parse on the CI machine and one of
// empty objects 2-4 s, against 45-130 ms for the densest real manifest of that size (26,713
// layers). The scan costs about 1 ms per MiB of structure and stops at the first limit crossed.

/** Deepest nesting of objects and arrays accepted; real manifests nest 5 levels at most. */
export const MAX_JSON_DEPTH = 64;
/** Most objects and arrays in one document: about 4 times what a 4 MiB index of platforms has. */
export const MAX_JSON_CONTAINERS = 100_000;
/** Most commas (so, values) in one document: about 4 times a 4 MiB manifest of descriptors. */
export const MAX_JSON_ELEMENTS = 300_000;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The end of the string whose opening quote is at `start`, or -1 when it does not end. */
function stringEnd(
  bytes: Uint8Array & { indexOf(value: number, from: number): number },
  start: number,
): number {
  let at = start;
  for (;;) {
    at = bytes.indexOf(QUOTE, at + 1);
    if (at === -1) return -1;
    let backslashes = 0;
    while (bytes[at - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
}

/**
 * Undefined when `bytes` stay within the limits, else which limit is crossed, as a phrase for an
 * error message. Malformed JSON passes (JSON.parse reports it); only structure outside strings
 * counts.
 */
export function jsonLimitExceeded(bytes: Buffer): string | undefined {
  let depth = 0;
  let containers = 0;
  let elements = 0;
  for (let i = 0; i < bytes.length; i++) {
    switch (bytes[i]) {
      case QUOTE:
        i = stringEnd(bytes, i);
        if (i === -1) return undefined;
        break;
      case 0x5b: // [
      case 0x7b: // {
        if (++depth > MAX_JSON_DEPTH) return `nesting deeper than ${MAX_JSON_DEPTH} levels`;
        if (++containers > MAX_JSON_CONTAINERS) {
          return `more than ${MAX_JSON_CONTAINERS} objects and arrays`;
        }
        break;
      case 0x5d: // ]
      case 0x7d: // }
        depth--;
        break;
      case 0x2c: // ,
        if (++elements > MAX_JSON_ELEMENTS) return `more than ${MAX_JSON_ELEMENTS} values`;
        break;
    }
  }
  return undefined;
}
