// The HTTP half of FHIRcast for a subscriber: discovery (fhircast.hl7.org/STU3/2-7-Conformance.html), subscribe / unsubscribe (form-encoded,
// fhircast.hl7.org/STU3/2-4-Subscribing.html), publish (JSON, fhircast.hl7.org/STU3/2-6-SendEventNotification.html) and get current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html). Bearer token on every call.
import type { CurrentContext, Notification, OperationOutcome, SubscriptionResponse, WellKnown } from "../fhircast/wire";

/** An access token, or a function returning one (called before every request, so it may refresh). */
export type TokenSource = string | (() => string | Promise<string>);

/** The fetch this client uses; defaults to the platform's. */
export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** A refusal by the hub (4xx/5xx), with the status and the hub's explanation. */
export class HubError extends Error {
  override readonly name = "HubError";
  constructor(
    readonly status: number,
    /** What was attempted, e.g. "subscribe" or "publish Patient-open". */
    readonly action: string,
    /** The hub's explanation: plain text, or the first OperationOutcome diagnostics. */
    readonly detail: string,
    /** The OperationOutcome, when the hub sent one. */
    readonly outcome?: OperationOutcome,
  ) {
    super(`${action}: hub answered ${status}${detail ? `: ${detail}` : ""}`);
  }
}

export interface SubscribeParams {
  topic: string;
  events: readonly string[];
  leaseSeconds?: number;
  subscriberName?: string;
  /** The endpoint of an existing subscription (re-subscribe, fhircast.hl7.org/STU3/2-4-Subscribing.html). */
  endpoint?: string;
}

async function errorFrom(res: Response, action: string): Promise<HubError> {
  const text = await res.text().catch(() => "");
  let outcome: OperationOutcome | undefined;
  let detail = text.trim();
  try {
    const parsed = JSON.parse(text) as Partial<OperationOutcome>;
    if (parsed?.resourceType === "OperationOutcome" && Array.isArray(parsed.issue)) {
      outcome = parsed as OperationOutcome;
      detail = outcome.issue.map((i) => i.diagnostics).filter(Boolean).join("; ") || detail;
    }
  } catch {
    // plain text
  }
  return new HubError(res.status, action, detail.slice(0, 2000), outcome);
}

export class HubHttp {
  /** hub.url without a trailing slash. */
  readonly hubUrl: string;

  constructor(
    hubUrl: string,
    private readonly token: TokenSource | undefined,
    private readonly fetchFn: FetchLike,
    private readonly timeoutMs: number,
  ) {
    this.hubUrl = hubUrl.replace(/\/+$/, "");
  }

  private async headers(extra: Record<string, string>): Promise<Record<string, string>> {
    const t = typeof this.token === "function" ? await this.token() : this.token;
    return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
  }

  private request(url: string, init: RequestInit): Promise<Response> {
    return this.fetchFn(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
  }

  /** GET {hub.url}/.well-known/fhircast-configuration (no token needed, fhircast.hl7.org/STU3/2-7-Conformance.html). */
  async discover(): Promise<WellKnown> {
    const res = await this.request(`${this.hubUrl}/.well-known/fhircast-configuration`, { method: "GET", headers: { Accept: "application/json" } });
    if (!res.ok) throw await errorFrom(res, "discovery");
    const body = (await res.json()) as WellKnown;
    if (!body || !Array.isArray(body.eventsSupported)) throw new HubError(res.status, "discovery", "the well-known document has no eventsSupported");
    return body;
  }

  private async postForm(params: Record<string, string>, action: string): Promise<string> {
    const res = await this.request(this.hubUrl, {
      method: "POST",
      headers: await this.headers({ "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" }),
      body: new URLSearchParams(params).toString(),
    });
    if (res.status < 200 || res.status >= 300) throw await errorFrom(res, action);
    const body = (await res.json()) as Partial<SubscriptionResponse>;
    const endpoint = body["hub.channel.endpoint"];
    if (typeof endpoint !== "string" || endpoint === "") throw new HubError(res.status, action, "the response has no hub.channel.endpoint");
    return endpoint;
  }

  /** Subscribes (or re-subscribes with `endpoint`); returns the WebSocket endpoint (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
  subscribe(p: SubscribeParams): Promise<string> {
    const params: Record<string, string> = {
      "hub.channel.type": "websocket",
      "hub.mode": "subscribe",
      "hub.topic": p.topic,
      "hub.events": p.events.join(","),
    };
    if (p.leaseSeconds !== undefined) params["hub.lease_seconds"] = String(p.leaseSeconds);
    if (p.subscriberName) params["subscriber.name"] = p.subscriberName;
    if (p.endpoint) params["hub.channel.endpoint"] = p.endpoint;
    return this.postForm(params, p.endpoint ? "re-subscribe" : "subscribe");
  }

  /** Unsubscribes (fhircast.hl7.org/STU3/2-4-Subscribing.html); the hub then sends a denial on the socket and closes it. */
  async unsubscribe(topic: string, endpoint: string): Promise<void> {
    await this.postForm({ "hub.channel.type": "websocket", "hub.mode": "unsubscribe", "hub.topic": topic, "hub.channel.endpoint": endpoint }, "unsubscribe");
  }

  /** POST {hub.url} with a JSON event (fhircast.hl7.org/STU3/2-6-SendEventNotification.html); resolves with the 2xx status. */
  async publish(notification: Notification): Promise<number> {
    const res = await this.request(this.hubUrl, {
      method: "POST",
      headers: await this.headers({ "Content-Type": "application/json", Accept: "application/json" }),
      body: JSON.stringify(notification),
    });
    if (res.status < 200 || res.status >= 300) throw await errorFrom(res, `publish ${notification.event["hub.event"]}`);
    await res.body?.cancel();
    return res.status;
  }

  /** GET {hub.url}/{topic} (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html). */
  async currentContext(topic: string): Promise<CurrentContext> {
    const res = await this.request(`${this.hubUrl}/${encodeURIComponent(topic)}`, {
      method: "GET",
      headers: await this.headers({ Accept: "application/json" }),
    });
    if (!res.ok) throw await errorFrom(res, "get current context");
    return (await res.json()) as CurrentContext;
  }
}
