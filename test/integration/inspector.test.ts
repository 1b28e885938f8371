// The inspector's API (issue 8): a snapshot of one topic and a live socket of its events, behind the
// hub's own inspect scope; never another topic.
import { describe, expect, it } from "vitest";
import { Client, hubFetch, mintToken, patientOpen, publish, subscriber, topicSql, uniqueTopic } from "../helpers/hub";

async function inspectorToken(claims: Record<string, unknown> = {}, expiresIn?: number) {
  return mintToken({ scope: "fhircast/*.read fhircast-hub/inspect", client_id: "inspector", ...claims }, { expiresIn });
}

describe("inspector API", () => {
  it("the snapshot lists subscribers, open contexts (current marked, newest first) and recent events", async () => {
    const topic = uniqueTopic("inspect");
    await subscriber(topic, "Patient-open,SyncError", { "subscriber.name": "Viewer" });
    await publish(patientOpen(topic, "p1"));
    const second = patientOpen(topic, "p2");
    await publish(second);
    const res = await hubFetch(`/api/inspect/${topic}`, { headers: { Authorization: `Bearer ${await inspectorToken()}` } });
    expect(res.status).toBe(200);
    const view = (await res.json()) as any;
    expect(view.topic).toBe(topic);
    expect(view.subscribers).toHaveLength(1);
    expect(view.subscribers[0]).toMatchObject({ name: "Viewer", events: ["Patient-open", "SyncError"], connected: true, missedAcks: 0, lastSyncError: null });
    expect(view.subscribers[0].leaseSecondsLeft).toBeGreaterThan(3500);
    expect(view.contexts.map((c: any) => [c.anchor, c.current])).toEqual([["Patient/p2", true], ["Patient/p1", false]]);
    expect(view.contexts[0].event.id).toBe(second.id);
    expect(view.contexts[0].content).toMatchObject({ resourceType: "Bundle", type: "collection", entry: [] });
    expect(view.events.map((e: any) => e.event.id)[0]).toBe(second.id);
    expect(JSON.stringify(view)).not.toContain("/ws/");
  });

  it("the live socket streams every accepted event and subscription changes", async () => {
    const topic = uniqueTopic("inspect-live");
    const res = await hubFetch(`http://hub.test/api/inspect/${topic}/live?access_token=${await inspectorToken()}`, {
      headers: { Upgrade: "websocket", Authorization: "" },
    });
    expect(res.status).toBe(101);
    const ws = res.webSocket!;
    const frames: any[] = [];
    ws.addEventListener("message", (e) => frames.push(JSON.parse(e.data as string)));
    ws.accept();
    await subscriber(topic, "Patient-open");
    const ev = patientOpen(topic);
    await publish(ev);
    const deadline = Date.now() + 5000;
    while (!frames.some((f) => f.type === "event") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(frames.filter((f) => f.type === "changed").length).toBeGreaterThan(0);
    const evf = frames.find((f) => f.type === "event");
    expect(evf.event.id).toBe(ev.id);
    expect(evf.seq).toBe(1);
    ws.close(1000);
  });

  it("the live socket ends with its token: closed 1008 \"token expired\" at expiry, nothing published after reaches it", async () => {
    const topic = uniqueTopic("inspect-expiry");
    const token = await inspectorToken({}, 2); // exp is whole seconds: it expires 1–2 s from now
    const exp = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))).exp * 1000;
    const res = await hubFetch(`http://hub.test/api/inspect/${topic}/live?access_token=${token}`, { headers: { Upgrade: "websocket", Authorization: "" } });
    expect(res.status).toBe(101);
    const live = new Client(res.webSocket!, null);
    res.webSocket!.accept();
    const before = patientOpen(topic, "p1");
    await publish(before);
    expect((await live.frame(0)).event.id).toBe(before.id); // it streams while the token is valid

    const closed = await live.waitClose(exp - Date.now() + 3000);
    expect(closed).toEqual({ code: 1008, reason: "token expired" });
    expect(Date.now()).toBeGreaterThanOrEqual(exp);
    // The REST API refuses the same token now; an event published after expiry reaches no inspector.
    expect((await hubFetch(`/api/inspect/${topic}`, { headers: { Authorization: `Bearer ${token}` } })).status).toBe(401);
    await publish(patientOpen(topic, "p2"));
    await live.quiet(1, 200);
  });

  it("on a topic with no storage, the live socket ends with its token too, and watching creates no storage", async () => {
    const topic = uniqueTopic("inspect-expiry-empty");
    const token = await inspectorToken({}, 1);
    const res = await hubFetch(`http://hub.test/api/inspect/${topic}/live?access_token=${token}`, { headers: { Upgrade: "websocket", Authorization: "" } });
    expect(res.status).toBe(101);
    const live = new Client(res.webSocket!, null);
    res.webSocket!.accept();
    expect(await live.waitClose(4000)).toEqual({ code: 1008, reason: "token expired" });
    expect(await topicSql(topic, `SELECT name FROM sqlite_master WHERE name = 'meta'`)).toEqual([]); // no schema (src/topic/schema.ts hasSchema)
  });

  it("a live socket that stops answering {seen} is closed before its unanswered event frames pass SOCKET_BUFFER_BYTES; one that answers gets everything", async () => {
    const topic = uniqueTopic("inspect-budget");
    const open = async () => {
      const res = await hubFetch(`http://hub.test/api/inspect/${topic}/live?access_token=${await inspectorToken()}`, { headers: { Upgrade: "websocket", Authorization: "" } });
      expect(res.status).toBe(101);
      const client = new Client(res.webSocket!, null);
      res.webSocket!.accept();
      return client;
    };
    const silent = await open();
    const reader = await open();
    reader.ws.addEventListener("message", (e) => {
      const f = JSON.parse(e.data as string) as { type: string; seq?: number };
      if (f.type === "event") reader.send({ seen: f.seq });
    });
    const events = Array.from({ length: 5 }, (_, i) => {
      const ev = patientOpen(topic, `p${i}`);
      const p = ev.event.context[0] as { resource: Record<string, unknown> };
      p.resource = { ...p.resource, text: { status: "generated", div: `<div>${"x".repeat(900_000)}</div>` } };
      return ev;
    });
    for (const ev of events) {
      expect((await publish(ev)).status).toBe(202);
      await expect.poll(() => reader.frames.some((f: any) => f.event?.id === ev.id), { timeout: 5000, interval: 10 }).toBe(true);
    }
    // 4 × 900 KB unanswered is under 4 MiB (the default); the 5th frame would not be: closed instead.
    expect(await silent.waitClose()).toEqual({ code: 1008, reason: "stopped reading: over SOCKET_BUFFER_BYTES unanswered" });
    expect(silent.frames.filter((f: any) => f.type === "event").map((f: any) => f.event.id)).toEqual(events.slice(0, 4).map((e) => e.id));
    expect(reader.frames.filter((f: any) => f.type === "event").map((f: any) => f.event.id)).toEqual(events.map((e) => e.id));
    expect(reader.closed).toBeUndefined();
    reader.close();
  });

  it("needs the inspect scope (403), a valid token (401), and a token bound to another topic is refused (403)", async () => {
    const topic = uniqueTopic("inspect-auth");
    const noScope = await mintToken({ scope: "fhircast/*.read" });
    expect((await hubFetch(`/api/inspect/${topic}`, { headers: { Authorization: `Bearer ${noScope}` } })).status).toBe(403);
    expect((await hubFetch(`/api/inspect/${topic}`, { headers: { Authorization: "" } })).status).toBe(401);
    const bound = await inspectorToken({ "hub.topic": "another-topic" });
    expect((await hubFetch(`/api/inspect/${topic}`, { headers: { Authorization: `Bearer ${bound}` } })).status).toBe(403);
    const live = await hubFetch(`http://hub.test/api/inspect/${topic}/live?access_token=${bound}`, { headers: { Upgrade: "websocket", Authorization: "" } });
    expect(live.status).toBe(403);
  });
});

describe("inspector API input", () => {
  it("a malformed percent-escape in the topic is a 400, not a 500", async () => {
    const token = await mintToken({ scope: "fhircast-hub/inspect" });
    const res = await hubFetch("/api/inspect/%E0%A4", { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("percent-encoding");
  });
});
