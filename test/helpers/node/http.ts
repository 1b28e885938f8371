// HTTP calls an application makes to the hub: a fetch with a timeout, a development token, subscribe,
// publish and GET of the current context. Every call has a timeout.
/** fetch with a timeout (every wait has one). */
export function http(url: string, init: RequestInit = {}, timeoutMs = 10_000): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

let counter = 0;
/** A topic unique to the calling test. */
export function uniqueTopic(label = "e2e"): string {
  return `${label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * An access token for `topic` from the hub's development issuer (`POST /auth/token`, client
 * credentials), as an application gets one from `npm start`'s default AUTH_MODE=dev. Undefined when
 * the hub runs without that issuer (404): requests then go without Authorization.
 */
export async function devToken(origin: string, topic: string, scope = "fhircast/*.read fhircast/*.write", clientId = "e2e-app"): Promise<string | undefined> {
  const res = await http(`${origin}/auth/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, scope, "hub.topic": topic }).toString(),
  });
  const text = await res.text();
  if (res.status === 404) return undefined;
  if (res.status !== 200) throw new Error(`POST /auth/token: expected 200, got ${res.status} ${text}`);
  return (JSON.parse(text) as { access_token: string }).access_token;
}

function authHeader(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** Subscribes with a form POST, as curl would; returns the endpoint (throws on anything but 202). */
export async function subscribe(hubUrl: string, topic: string, events: string, opts: { token?: string; extra?: Record<string, string> } = {}): Promise<string> {
  const res = await http(hubUrl, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...authHeader(opts.token) },
    body: new URLSearchParams({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": events, ...opts.extra }).toString(),
  });
  const text = await res.text();
  if (res.status !== 202) throw new Error(`subscribe: expected 202, got ${res.status} ${text}`);
  return (JSON.parse(text) as { "hub.channel.endpoint": string })["hub.channel.endpoint"];
}

/** Publishes a JSON event; returns the response (the caller checks the status). */
export function publish(hubUrl: string, body: unknown, opts: { token?: string; timeoutMs?: number } = {}): Promise<Response> {
  return http(
    hubUrl,
    { method: "POST", headers: { "Content-Type": "application/json", ...authHeader(opts.token) }, body: JSON.stringify(body) },
    opts.timeoutMs,
  );
}

/** GET {hub.url}/{topic}. */
export async function currentContext(hubUrl: string, topic: string, opts: { token?: string } = {}): Promise<any> {
  const res = await http(`${hubUrl}/${encodeURIComponent(topic)}`, { headers: authHeader(opts.token) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`get context: expected 200, got ${res.status} ${text}`);
  return JSON.parse(text);
}
