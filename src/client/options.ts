// Options of a FhircastClient.
import type { ReconnectOptions } from "./backoff";
import type { FetchLike, TokenSource } from "./hub-http";
import type { SocketFactory } from "./socket";

export interface FhircastClientOptions {
  /** hub.url, e.g. "https://hub.example.com/api/hub" (from the SMART token response). */
  hubUrl: string;
  /** hub.topic (from the SMART token response). */
  topic: string;
  /** The events to subscribe to, e.g. ["Patient-open", "Patient-close"]. */
  events: readonly string[];
  /** Bearer token, or a function returning one (called before every request). */
  token?: TokenSource;
  /** subscriber.name: how the hub names this app in SyncErrors. */
  subscriberName?: string;
  /** hub.lease_seconds to ask for (the hub may shorten it). */
  leaseSeconds?: number;
  /** Re-subscribe on the same endpoint before the lease ends (default true). */
  renewLease?: boolean;
  /** Re-subscribe after a dropped socket; `false` turns it off. */
  reconnect?: ReconnectOptions | false;
  /** Timeout of each HTTP request and of the wait for the confirmation (default 10 s). */
  timeoutMs?: number;
  /** fetch to use (default: the platform's). */
  fetch?: FetchLike;
  /** WebSocket factory (default: `new WebSocket(url)`; required where there is no global WebSocket, e.g. Node 20). */
  webSocket?: SocketFactory;
}
