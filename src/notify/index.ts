// The notify layer's public surface: events in distribution's envelope, sent to the endpoints of
// config.yml's `notifications` section, each with its own queue, retries and an on-disk spool.

export {
  BLOB_MEDIA_TYPE,
  EVENT_ACTIONS,
  EVENTS_MEDIA_TYPE,
  manifestReferences,
  type EventAction,
  type EventDescriptor,
  type EventOccurrence,
  type EventRequest,
  type EventTarget,
  type RegistryEvent,
} from "./events.js";
export { type EndpointConfig, type NotifyLogger, type QueueLimits } from "./endpoint.js";
export {
  Notifier,
  type NotificationsConfig,
  type NotifierOptions,
  type SpoolLocation,
} from "./notifier.js";
export { DriverSpool, type EventSpool } from "./spool.js";
