// FHIRcast subscriber client (package entry point "./client"): see docs/client.md.
// Runs in browsers, Node ≥ 22 and Workers with platform APIs only (fetch, WebSocket, crypto).
export { FhircastClient, DeniedError, type ClientState, type CloseResult, type PublishResult, type UpdateResult } from "./client";
export type { FhircastClientOptions } from "./options";
export type { ClientEventMap, ReceivedEvent, AckStatus } from "./client-events";
export { HubError, HubHttp, type TokenSource, type FetchLike, type SubscribeParams } from "./hub-http";
export {
  buildEvent,
  checkEvent,
  contextFor,
  EventValidationError,
  referenceEntry,
  resourceEntry,
  updateBundle,
  type ContentChanges,
  type ContextValues,
  type EventOptions,
  type FhirResource,
  type ReferenceLike,
} from "./event-builder";
export { parseFrame, grantedEvents, type Frame } from "./frames";
export { syncErrorContext, syncErrorDetails, type SyncErrorDetails } from "../fhircast/syncerror";
export { VersionTracker } from "./versions";
export { anchorOf } from "../fhircast/anchors";
export { backoffDelay, RECONNECT_DEFAULTS, type ReconnectOptions } from "./backoff";
export { TypedEmitter, type Listener } from "./emitter";
export type { SocketLike, SocketFactory } from "./socket";
// The FHIRcast model the hub is built on (src/fhircast): wire types and the catalog, for applications.
export type { Confirmation, ContextEntry, CurrentContext, Denial, Notification, WellKnown } from "../fhircast/wire";
export { EventCatalog, type EventSpec, type EventRole } from "../fhircast/catalog";
