// The events a registry sends, in distribution's envelope (notifications/event.go), so that
// receivers written for distribution read Berth's unchanged: `{"events": [event]}` posted with
// Content-Type `application/vnd.docker.distribution.events.v1+json`, one event per request as
// distribution 2.8 sends them.

/** The Content-Type of an envelope. */
export const EVENTS_MEDIA_TYPE = "application/vnd.docker.distribution.events.v1+json";

/** The media type distribution gives blobs in events (it does not know a layer's type). */
export const BLOB_MEDIA_TYPE = "application/octet-stream";

/** What happened: distribution's four actions. */
export type EventAction = "push" | "pull" | "delete" | "mount";

export const EVENT_ACTIONS: readonly EventAction[] = ["push", "pull", "delete", "mount"];

/** A descriptor, as `target.references` lists them. */
export interface EventDescriptor {
  mediaType?: string;
  digest: string;
  size?: number;
}

/** What the event is about: a manifest, a blob, or a tag (a tag deletion). */
export interface EventTarget {
  mediaType?: string;
  size?: number;
  digest?: string;
  /** The same as size (distribution keeps it for older receivers). */
  length?: number;
  repository: string;
  /** The repository a mounted blob came from. */
  fromRepository?: string;
  /** Where the manifest or blob can be fetched, by digest. */
  url?: string;
  tag?: string;
  /** A manifest's references (its config and layers, an index's manifests), when configured. */
  references?: EventDescriptor[];
}

/** The request that caused the event. */
export interface EventRequest {
  id: string;
  /** The client's address (host:port). */
  addr?: string;
  /** The Host the client asked for. */
  host?: string;
  method: string;
  useragent: string;
}

/** One event, as distribution writes it. */
export interface RegistryEvent {
  id: string;
  /** RFC 3339 with fractional seconds. */
  timestamp: string;
  action: EventAction;
  target: EventTarget;
  request: EventRequest;
  /** Who made the request: `name` is the authenticated user, absent when anonymous. */
  actor: { name?: string };
  /** The registry that sent it: `addr` its host:port, `instanceID` this process's UUID. */
  source: { addr?: string; instanceID: string };
}

/** What the API knows of an event; the notifier adds its id, timestamp and source. */
export interface EventOccurrence {
  action: EventAction;
  target: EventTarget;
  request: EventRequest;
  actor: { name?: string };
}

/** The manifest types whose references are listed with `notifications.events.includereferences`. */
interface ManifestShape {
  config?: EventDescriptor;
  layers?: EventDescriptor[];
  manifests?: EventDescriptor[];
}

function descriptor(value: unknown): EventDescriptor | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const { mediaType, digest, size } = value as Record<string, unknown>;
  if (typeof digest !== "string") return undefined;
  return {
    ...(typeof mediaType === "string" ? { mediaType } : {}),
    digest,
    ...(typeof size === "number" ? { size } : {}),
  };
}

/**
 * The descriptors a manifest refers to, as distribution's `References()` lists them: an image
 * manifest's config and layers, an index's or manifest list's manifests. The content has been
 * validated by the storage layer; anything unexpected is left out rather than failing the event.
 */
export function manifestReferences(content: Uint8Array): EventDescriptor[] {
  let parsed: ManifestShape;
  try {
    parsed = JSON.parse(Buffer.from(content).toString("utf8")) as ManifestShape;
  } catch {
    return [];
  }
  const listed: unknown[] = Array.isArray(parsed.manifests)
    ? parsed.manifests
    : [parsed.config, ...(Array.isArray(parsed.layers) ? parsed.layers : [])];
  return listed.flatMap((entry) => descriptor(entry) ?? []);
}
