// Limits with clear errors (issue 5; fhircast.hl7.org/STU3/4-3-security-considerations.html "Rate limits"), in the "limits" project: the same
// runtime with MAX_SUBSCRIPTIONS_PER_TOPIC=3, MAX_INSPECTORS_PER_TOPIC=2 and a RATE_LIMITER binding of 5 requests per 60 s per key
// (`subscribe:<client>`, `publish:<client>`). Every test uses its own client_id so that rate-limit
// buckets never collide, and its own topics.
import { beforeEach, describe, expect, it } from "vitest";
import {
  connect, currentContext, expectOutcome, expectText, form, hubFetch, mintToken, patientOpen, publishInit, subscribeForm, topicSql,
  uniqueTopic,
} from "../../helpers/hub";
import { waitUntil } from "../../helpers/until";

const MAX_BODY_BYTES = 1048576;
const MAX_FRAME_BYTES = 16384;

let clients = 0;
/** A client of its own: a token with a fresh client_id and every FHIRcast scope. */
async function newClient(label: string) {
  const clientId = `${label}-${(clients++).toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
  const token = await mintToken({ client_id: clientId });
  const as = (init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` } });
  return {
    clientId,
    as,
    subscribe: (topic: string, events = "Patient-open", extra: Record<string, string> = {}) => hubFetch("/api/hub", as(subscribeForm(topic, events, extra))),
    publish: (body: unknown, path = "/api/hub") => hubFetch(path, as(publishInit(body))),
    unsubscribe: (topic: string, endpoint: string) =>
      hubFetch("/api/hub", as(form({ "hub.channel.type": "websocket", "hub.mode": "unsubscribe", "hub.topic": topic, "hub.channel.endpoint": endpoint }))),
    get: (topic: string) => hubFetch(`/api/hub/${encodeURIComponent(topic)}`, as()),
  };
}

async function endpointOf(res: Response): Promise<string> {
  expect(res.status).toBe(202);
  return ((await res.json()) as { "hub.channel.endpoint": string })["hub.channel.endpoint"];
}

const subscriptionCount = async (topic: string) => (await topicSql<{ n: number }>(topic, `SELECT count(*) AS n FROM subscriptions`))[0]!.n;

describe("MAX_SUBSCRIPTIONS_PER_TOPIC (3 here)", () => {
  it("the 4th subscription on a topic: 403 plain text naming MAX_SUBSCRIPTIONS_PER_TOPIC; the three keep working", async () => {
    const topic = uniqueTopic("max");
    const owners = [await newClient("max"), await newClient("max"), await newClient("max")];
    const endpoints: string[] = [];
    for (const c of owners) endpoints.push(await endpointOf(await c.subscribe(topic)));
    const sockets = [await connect(endpoints[0]!), await connect(endpoints[1]!)]; // the third stays unconnected: it counts too
    for (const s of sockets) await s.waitFrames(1);

    const fourth = await newClient("max");
    expect(await expectText(await fourth.subscribe(topic), 403, "MAX_SUBSCRIPTIONS_PER_TOPIC"))
      .toBe("this topic already has 3 subscriptions (MAX_SUBSCRIPTIONS_PER_TOPIC)");
    expect(await subscriptionCount(topic)).toBe(3);

    // A re-subscribe of an existing subscription is not a new one: allowed at the cap.
    expect((await owners[0]!.subscribe(topic, "Patient-open,Patient-close", { "hub.channel.endpoint": endpoints[0]! })).status).toBe(202);
    expect(((await sockets[0]!.frame(1)) as Record<string, unknown>)["hub.events"]).toBe("Patient-open,Patient-close");
    expect(await subscriptionCount(topic)).toBe(3);

    // Events still reach the subscribers.
    const ev = patientOpen(topic, "p1");
    expect((await fourth.publish(ev)).status).toBe(202);
    expect((await sockets[0]!.frame(2)).id).toBe(ev.id);
    expect((await sockets[1]!.frame(1)).id).toBe(ev.id);

    // Freeing a place lets the next one in.
    expect((await owners[2]!.unsubscribe(topic, endpoints[2]!)).status).toBe(202);
    expect(await subscriptionCount(topic)).toBe(2);
    expect((await fourth.subscribe(topic)).status).toBe(202);
    expect(await subscriptionCount(topic)).toBe(3);
    for (const s of sockets) s.close();
  });

  it("the cap is per topic: a full topic does not limit another", async () => {
    const full = uniqueTopic("max");
    const other = uniqueTopic("max");
    const c = await newClient("max-per-topic");
    for (let i = 0; i < 3; i++) expect((await c.subscribe(full)).status).toBe(202);
    const d = await newClient("max-per-topic");
    expect((await d.subscribe(full)).status).toBe(403);
    expect((await d.subscribe(other)).status).toBe(202);
    expect(await subscriptionCount(full)).toBe(3);
    expect(await subscriptionCount(other)).toBe(1);
  });
});

describe("MAX_INSPECTORS_PER_TOPIC (2 here)", () => {
  const live = async (topic: string) => {
    const token = await mintToken({ scope: "fhircast-hub/inspect", client_id: `inspector-${crypto.randomUUID().slice(0, 8)}` });
    return hubFetch(`/api/inspect/${encodeURIComponent(topic)}/live?access_token=${token}`, { headers: { Upgrade: "websocket", Authorization: "" } });
  };

  it("a 3rd live inspector socket on a topic: 403 OperationOutcome naming MAX_INSPECTORS_PER_TOPIC; another topic and a freed place are open", async () => {
    const topic = uniqueTopic("max-inspectors");
    const open: WebSocket[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await live(topic);
      expect(res.status).toBe(101);
      res.webSocket!.accept();
      open.push(res.webSocket!);
    }
    expect(await expectOutcome(await live(topic), 403, "MAX_INSPECTORS_PER_TOPIC"))
      .toBe("this topic already has 2 live inspector sockets (MAX_INSPECTORS_PER_TOPIC)");
    // Per topic: another topic is not limited.
    const elsewhere = await live(uniqueTopic("max-inspectors-other"));
    expect(elsewhere.status).toBe(101);
    elsewhere.webSocket!.accept();
    elsewhere.webSocket!.close(1000);
    // A closed inspector frees its place (once the topic has seen the close).
    open.shift()!.close(1000);
    const deadline = Date.now() + 5000;
    let again = await live(topic);
    while (again.status !== 101 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 25));
      again = await live(topic);
    }
    expect(again.status).toBe(101);
    again.webSocket!.accept();
    for (const ws of [...open, again.webSocket!]) ws.close(1000);
  });
});

describe("per-client rate limits (RATE_LIMITER: 5 per 60 s per key)", () => {
  // miniflare's rate limiter counts in fixed windows aligned to the clock (floor(now / 60 s)): a
  // window that turned between a test's first and 6th request restarted the count, and the 6th
  // passed. Each test starts its requests with at least 10 s of a window left (waiting for the next
  // window otherwise, at most 10 s; timers advance workerd's clock).
  beforeEach(() => waitUntil(() => Date.now() % 60_000 < 50_000, 11_000, "a rate-limit window with 10 s left", 250), 15_000);

  it("the 6th publish from one client: 429 OperationOutcome with Retry-After; not distributed; another client is not limited", async () => {
    const topic = uniqueTopic("rate");
    const watcher = await newClient("rate-watch");
    const socket = await connect(await endpointOf(await watcher.subscribe(topic)));
    await socket.waitFrames(1);
    const busy = await newClient("rate-pub");
    const sent: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const ev = patientOpen(topic, `p${i}`);
      expect((await busy.publish(ev)).status).toBe(202);
      sent.push(ev.id);
    }
    expect(((await socket.waitFrames(6)).slice(1) as { id: string }[]).map((f) => f.id)).toEqual(sent);
    const before = await currentContext(topic);

    const sixth = await busy.publish(patientOpen(topic, "p6"));
    expect(sixth.headers.get("Retry-After")).toBe("60");
    const detail = await expectOutcome(sixth, 429, "too many publish requests");
    expect(detail).toBe("too many publish requests from this client; slow down");
    // Also through hub.url/{topic}.
    const seventh = await busy.publish(patientOpen(topic, "p7"), `/api/hub/${encodeURIComponent(topic)}`);
    expect(seventh.status).toBe(429);
    expect(seventh.headers.get("Retry-After")).toBe("60");
    await socket.quiet(6);
    expect(await currentContext(topic)).toStrictEqual(before);

    // Another client is not limited; the busy client may still subscribe (a separate bucket).
    const calm = await newClient("rate-pub-calm");
    const ev = patientOpen(topic, "p8");
    expect((await calm.publish(ev)).status).toBe(202);
    expect((await socket.frame(6)).id).toBe(ev.id);
    expect((await busy.subscribe(uniqueTopic("rate"))).status).toBe(202);
    socket.close();
  });

  it("the 6th subscribe from one client: 429 plain text with Retry-After; no subscription; another client is not limited", async () => {
    const busy = await newClient("rate-sub");
    for (let i = 1; i <= 5; i++) expect((await busy.subscribe(uniqueTopic("rate"))).status).toBe(202);
    const topic = uniqueTopic("rate");
    const sixth = await busy.subscribe(topic);
    expect(sixth.headers.get("Retry-After")).toBe("60");
    expect(await expectText(sixth, 429)).toBe("too many subscribe requests from this client; slow down");
    const tables = await topicSql(topic, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'subscriptions'`);
    if (tables.length > 0) expect(await subscriptionCount(topic)).toBe(0);

    const calm = await newClient("rate-sub-calm");
    expect((await calm.subscribe(topic)).status).toBe(202);
    expect(await subscriptionCount(topic)).toBe(1);
    // The busy client's publish bucket is separate.
    expect((await busy.publish(patientOpen(topic, "p1"))).status).toBe(202);
  });

  it("429 responses expose Retry-After to browsers (CORS)", async () => {
    const busy = await newClient("rate-cors");
    for (let i = 1; i <= 5; i++) expect((await busy.subscribe(uniqueTopic("rate"))).status).toBe(202);
    const res = await hubFetch("/api/hub", busy.as({ ...subscribeForm(uniqueTopic("rate"), "Patient-open"), headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: "https://viewer.example" } }));
    expect(res.status).toBe(429);
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe("https://viewer.example") // this project sets ALLOWED_ORIGINS;
    expect(res.headers.get("Access-Control-Expose-Headers")).toMatch(/Retry-After/);
  });
});

describe("MAX_BODY_BYTES (1 MiB): 413", () => {
  const huge = (topic: string) => {
    const ev = patientOpen(topic, "p1") as ReturnType<typeof patientOpen> & { event: { padding?: string } };
    const base = JSON.stringify(ev).length;
    (ev.event as Record<string, unknown>).padding = "x".repeat(MAX_BODY_BYTES - base);
    return JSON.stringify(ev);
  };

  it("a publish body of MAX_BODY_BYTES + 1 bytes: 413 OperationOutcome (too-long); nothing distributed", async () => {
    const topic = uniqueTopic("body");
    const c = await newClient("body");
    const socket = await connect(await endpointOf(await c.subscribe(topic)));
    await socket.waitFrames(1);
    const body = huge(topic);
    expect(new TextEncoder().encode(body).length).toBeGreaterThan(MAX_BODY_BYTES);
    const res = await hubFetch("/api/hub", c.as({ method: "POST", headers: { "Content-Type": "application/json" }, body }));
    expect(res.status).toBe(413);
    const detail = await expectOutcome(res, 413, `${MAX_BODY_BYTES} bytes`);
    expect(detail).toBe(`request body is larger than this hub's limit of ${MAX_BODY_BYTES} bytes`);
    const exact = "x".repeat(MAX_BODY_BYTES + 1);
    const viaTopic = await hubFetch(`/api/hub/${encodeURIComponent(topic)}`, c.as({ method: "POST", headers: { "Content-Type": "application/fhir+json" }, body: exact }));
    expect(viaTopic.status).toBe(413);
    expect((await viaTopic.json() as { issue: { code: string }[] }).issue[0]!.code).toBe("too-long");
    await socket.quiet(1);
    expect(await currentContext(topic)).toStrictEqual({ "context.type": "", context: [] });
    socket.close();
  });

  it("exactly MAX_BODY_BYTES is read (not 413: the JSON is judged instead)", async () => {
    const c = await newClient("body");
    const res = await hubFetch("/api/hub", c.as({ method: "POST", headers: { "Content-Type": "application/json" }, body: " ".repeat(MAX_BODY_BYTES - 2) + "{}" }));
    expect(res.status).toBe(400);
  });

  it("a subscription form over the limit: 413 plain text; no subscription", async () => {
    const topic = uniqueTopic("body");
    const c = await newClient("body");
    const body = new URLSearchParams({ "hub.channel.type": "websocket", "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open", "subscriber.name": "n".repeat(MAX_BODY_BYTES) }).toString();
    await expectText(await hubFetch("/api/hub", c.as({ method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body })), 413, `${MAX_BODY_BYTES} bytes`);
    const tables = await topicSql(topic, `SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'subscriptions'`);
    expect(tables).toEqual([]);
  });

  it("a streamed body (no Content-Length) over the limit: 413 without buffering it all", async () => {
    const topic = uniqueTopic("body");
    const c = await newClient("body");
    const chunk = new TextEncoder().encode("x".repeat(65536));
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled++ >= 64) controller.close(); // 4 MiB in all if read to the end
        else controller.enqueue(chunk);
      },
    });
    const res = await hubFetch(`/api/hub/${encodeURIComponent(topic)}`, c.as({ method: "POST", headers: { "Content-Type": "application/json" }, body: stream, duplex: "half" } as RequestInit));
    expect(res.status).toBe(413);
    expect(pulled).toBeLessThan(64);
  });

  it("/auth/token over its own 16 KiB limit: 413 with an OAuth error", async () => {
    const res = await hubFetch("/auth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Authorization: "" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: "big", scope: `fhircast/*.read ${"openid ".repeat(3000)}` }).toString(),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: "invalid_request" });
  });
});

describe("WebSocket frames over 16384 bytes: the hub closes the socket with 1009", () => {
  async function connected(label: string) {
    const topic = uniqueTopic(label);
    const c = await newClient(label);
    const endpoint = await endpointOf(await c.subscribe(topic));
    const socket = await connect(endpoint);
    await socket.waitFrames(1);
    return { topic, c, socket };
  }

  it("a text frame of 16385 bytes: close 1009; the subscription ends", async () => {
    const { topic, socket } = await connected("frame");
    socket.send("x".repeat(MAX_FRAME_BYTES + 1));
    const closed = await socket.waitClose();
    expect(closed.code).toBe(1009);
    expect(closed.reason).toBe(`frames over ${MAX_FRAME_BYTES} bytes are refused`);
    expect(await subscriptionCount(topic)).toBe(0);
  });

  it("a binary frame of 16385 bytes: close 1009", async () => {
    const { socket } = await connected("frame");
    socket.ws.send(new Uint8Array(MAX_FRAME_BYTES + 1));
    expect((await socket.waitClose()).code).toBe(1009);
  });

  it("a text frame of 16384 bytes exactly is not refused (ignored: not an acknowledgement)", async () => {
    const { topic, c, socket } = await connected("frame");
    socket.send("y".repeat(MAX_FRAME_BYTES));
    const ev = patientOpen(topic, "p1");
    expect((await c.publish(ev)).status).toBe(202);
    expect((await socket.frame(1)).id).toBe(ev.id);
    expect(socket.closed).toBeUndefined();
    expect(await subscriptionCount(topic)).toBe(1);
    socket.close();
  });

  // Regression: the size of a text frame is counted in UTF-8 bytes, not UTF-16 code units.
  it("a text frame of 9000 two-byte characters (18000 bytes, 9000 UTF-16 units): close 1009", async () => {
    const { socket } = await connected("frame");
    socket.send("é".repeat(9000));
    expect((await socket.waitClose(2000)).code).toBe(1009);
  });

  // Regression: the subscriber's reciprocal close echoes the hub's 1009; closes the hub started never
  // raise a SyncError.
  it("an oversized frame is a refusal by the hub, not the subscriber's abnormal close: no SyncError to the others", async () => {
    const { topic, c, socket } = await connected("frame");
    const other = await connect(await endpointOf(await c.subscribe(topic, "Patient-open,SyncError")));
    await other.waitFrames(1);
    socket.send("x".repeat(MAX_FRAME_BYTES + 1));
    expect((await socket.waitClose()).code).toBe(1009);
    await other.quiet(1, 500);
    other.close();
  });
});
