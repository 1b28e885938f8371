// Eviction and hibernation (issue 11): one scripted session (subscribe, open, derived open, update,
// stale update, select, late subscriber with replay, closes, an ack timeout that ends in a SyncError
// and a denial, a publish after it, an unsubscribe) runs twice: once as is, once with the topic's
// Durable Object evicted (WebSockets hibernated) between every step. The outcomes (the frames each
// subscriber received, close codes, HTTP statuses, GET results, the event log, the subscriptions left)
// must be the same, with only the values the hub makes up (UUIDs, its timestamps) normalized.
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  type Client, connect, currentContext, event, patient, publish, subscribe, topicSql, topicStub, uniqueTopic, unsubscribe,
} from "../helpers/hub";

const A_EVENTS = "Patient-open,Patient-close,DiagnosticReport-open,DiagnosticReport-update,DiagnosticReport-select,DiagnosticReport-close,SyncError";

/** Events with fixed ids and timestamps, so that both runs publish byte-identical events (topic aside). */
function fixed(topic: string, label: string, n: number, name: string, context: unknown[], extra: Record<string, unknown> = {}) {
  const ev = event(topic, name, context, extra);
  ev.id = `evict-script-${label}`;
  ev.timestamp = `2026-01-01T00:00:${String(n).padStart(2, "0")}.000Z`;
  return ev;
}
const report = (id: string, pid: string) => ({ resourceType: "DiagnosticReport", id, status: "unknown", subject: { reference: `Patient/${pid}` } });

interface Outcome {
  statuses: Record<string, number>;
  gets: Record<string, unknown>;
  frames: Record<string, unknown[]>;
  closes: Record<string, unknown>;
  log: unknown[];
  subscriptions: unknown[];
}

async function runScript(evict: boolean): Promise<{ outcome: Outcome; topic: string }> {
  const topic = uniqueTopic(evict ? "evict" : "noevict");
  const stub = topicStub(topic);
  const clients: Record<string, Client> = {};
  const out: Outcome = { statuses: {}, gets: {}, frames: {}, closes: {}, log: [], subscriptions: [] };
  let step = 0;
  const between = async () => {
    step++;
    if (evict) await evictDurableObject(stub);
  };
  /** Waits until each named client holds `n` frames (bounded). */
  const frames = async (counts: Record<string, number>) => {
    for (const [name, n] of Object.entries(counts)) await clients[name]!.waitFrames(n, 5000);
  };
  const pub = async (label: string, ev: ReturnType<typeof event>) => {
    const res = await publish(ev);
    out.statuses[label] = res.status;
    await res.text();
    // Keep the real ack deadlines out of the way (a slow run must not time out early); step "timeout" fires them.
    await topicSql(topic, `UPDATE deadlines SET due = 9000000000000 WHERE kind = 'ack'`);
  };
  const sub = async (name: string, events: string, ack: number | null) => {
    const endpoint = await subscribe(topic, events, { "subscriber.name": name });
    await between();
    clients[name] = await connect(endpoint, ack);
    return endpoint;
  };

  // 1–3: three subscribers: A (everything, acks), B (Patient-open + SyncError, acks), C (silent: never acks).
  await sub("A", A_EVENTS, 200);
  await frames({ A: 1 });
  await between();
  const endpointB = await sub("B", "Patient-open,SyncError", 200);
  await frames({ B: 1 });
  await between();
  await sub("C", "Patient-open,DiagnosticReport-open", null);
  await frames({ C: 1 });
  await between();

  // 4: Patient-open p1.
  await pub("open-p1", fixed(topic, "open-p1", 1, "Patient-open", [{ key: "patient", resource: patient("p1") }]));
  await frames({ A: 2, B: 2, C: 2 });
  await between();
  // 5: DiagnosticReport-open r1 for p1 (B's derived Patient-open p1 is a duplicate: not sent).
  await pub("open-r1", fixed(topic, "open-r1", 2, "DiagnosticReport-open", [{ key: "report", resource: report("r1", "p1") }, { key: "patient", resource: patient("p1") }]));
  await frames({ A: 3, C: 3 });
  await between();
  // 6: GET current context (the report, version v1).
  const g1 = await currentContext(topic);
  out.gets["after-open-r1"] = g1;
  const v1 = g1["context.versionId"] as string;
  await between();
  // 7: an update based on v1.
  const updates = (obsId: string) => ({
    key: "updates",
    resource: { resourceType: "Bundle", id: `bundle-${obsId}`, type: "transaction", entry: [{ request: { method: "PUT" }, resource: { resourceType: "Observation", id: obsId, status: "final", code: { text: obsId } } }] },
  });
  const reportRef = { key: "report", reference: { reference: "DiagnosticReport/r1" } };
  await pub("update-1", fixed(topic, "update-1", 3, "DiagnosticReport-update", [reportRef, updates("obs-1")], { "context.versionId": v1 }));
  await frames({ A: 4 });
  await between();
  // 8: a stale update (v1 again): 409, nothing changes.
  await pub("update-stale", fixed(topic, "update-stale", 4, "DiagnosticReport-update", [reportRef, updates("obs-stale")], { "context.versionId": v1 }));
  await between();
  out.gets["after-update"] = await currentContext(topic);
  await between();
  // 9: a select.
  await pub("select", fixed(topic, "select", 5, "DiagnosticReport-select", [reportRef, { key: "select", reference: [{ reference: "Observation/obs-1" }] }]));
  await frames({ A: 5 });
  await between();
  // 10: a late subscriber D: confirmation, then the replay (Patient p1, DiagnosticReport r1 with its current version).
  await sub("D", "Patient-open,DiagnosticReport-open", 200);
  await frames({ D: 3 });
  await between();
  // 11–12: closes.
  await pub("close-r1", fixed(topic, "close-r1", 6, "DiagnosticReport-close", [{ key: "report", resource: report("r1", "p1") }, { key: "patient", resource: patient("p1") }]));
  await frames({ A: 6 });
  await between();
  await pub("close-p1", fixed(topic, "close-p1", 7, "Patient-close", [{ key: "patient", resource: patient("p1") }]));
  await frames({ A: 7 });
  await between();
  out.gets["after-closes"] = await currentContext(topic);
  await between();
  // 13: the acks of A, B and D have been processed (C never acks).
  let pending: unknown;
  for (let i = 0; i < 100; i++) {
    const view = await runInDurableObject(stub, (instance) => instance.inspect());
    pending = view.subscribers.map((s) => [s.name, s.pendingAcks]).sort();
    if (JSON.stringify(pending) === JSON.stringify([["A", 0], ["B", 0], ["C", 2], ["D", 0]])) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  out.gets["pending-before-timeout"] = pending;
  await between();
  // 14: the ack deadlines pass: C missed its acks → a SyncError to A and B, a denial to C, close 1000.
  // (due = 1, not 0: a handler that reschedules mid-alarm would call setAlarm(0), which the runtime refuses.)
  await topicSql(topic, `UPDATE deadlines SET due = 1 WHERE kind = 'ack'`);
  await topicSql(topic, `UPDATE events SET accepted_at = 1`); // time passes for the events too
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  await frames({ A: 8, B: 3, C: 4 });
  out.closes.C = await clients.C!.waitClose(5000);
  await between();
  // 15: a publish after the timeout reaches A, B and D, not C.
  await pub("open-p2", fixed(topic, "open-p2", 8, "Patient-open", [{ key: "patient", resource: patient("p2") }]));
  await frames({ A: 9, B: 4, D: 4 });
  await between();
  // 16: B unsubscribes: denial, close 1000.
  const u = await unsubscribe(topic, endpointB);
  out.statuses.unsubscribe = u.status;
  await u.text();
  await frames({ B: 5 });
  out.closes.B = await clients.B!.waitClose(5000);
  await between();
  out.gets["final"] = await currentContext(topic);
  // Nothing else arrives.
  for (const c of Object.values(clients)) await c.quiet(c.frames.length, 150);
  for (const [name, c] of Object.entries(clients)) out.frames[name] = c.frames;
  out.log = (await topicSql<{ seq: number; id: string; name: string; body: string }>(topic, `SELECT seq, id, name, body FROM events ORDER BY seq`)).map((r) => ({ ...r, body: JSON.parse(r.body) }));
  out.subscriptions = await topicSql(topic, `SELECT name, events, connected_at IS NOT NULL AS connected FROM subscriptions ORDER BY name`);
  for (const c of Object.values(clients)) if (!c.closed) c.close();
  expect(step).toBeGreaterThan(20);
  return { outcome: out, topic };
}

/**
 * Replaces the topic by a placeholder, every UUID by `<uuid-N>` in order of first appearance (so that
 * equal values stay equal: a version in a GET and the same version in a frame), and the hub's own
 * timestamps (not the fixed 2026-01-01 ones of the script's events) by `<hub-time>`.
 */
function normalize(outcome: Outcome, topic: string): unknown {
  const seen = new Map<string, string>();
  const text = JSON.stringify(outcome)
    .split(topic)
    .join("<topic>")
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, (u) => {
      if (!seen.has(u)) seen.set(u, `<uuid-${seen.size}>`);
      return seen.get(u)!;
    })
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z/g, (t) => (t.startsWith("2026-01-01T00:00:") ? t : "<hub-time>"));
  return JSON.parse(text);
}

describe("a scripted session gives the same outcome with and without eviction between every step", () => {
  it("frames, closes, statuses, GET results, event log and subscriptions are identical", async () => {
    const plain = await runScript(false);
    const evicted = await runScript(true);
    const a = normalize(plain.outcome, plain.topic) as Outcome;
    const b = normalize(evicted.outcome, evicted.topic) as Outcome;

    // The script did what it says (so that "the same" is not "the same nothing").
    expect(a.statuses).toEqual({
      "open-p1": 202, "open-r1": 202, "update-1": 202, "update-stale": 409, select: 202, "close-r1": 202, "close-p1": 202, "open-p2": 202, unsubscribe: 202,
    });
    expect(a.frames.A!.map((f: any) => f.event?.["hub.event"] ?? f["hub.mode"])).toEqual([
      "subscribe", "Patient-open", "DiagnosticReport-open", "DiagnosticReport-update", "DiagnosticReport-select", "DiagnosticReport-close", "Patient-close", "SyncError", "Patient-open",
    ]);
    expect(a.frames.B!.map((f: any) => f.event?.["hub.event"] ?? f["hub.mode"])).toEqual(["subscribe", "Patient-open", "SyncError", "Patient-open", "denied"]);
    expect(a.frames.C!.map((f: any) => f.event?.["hub.event"] ?? f["hub.mode"])).toEqual(["subscribe", "Patient-open", "DiagnosticReport-open", "denied"]);
    expect(a.frames.D!.map((f: any) => f.id ?? f["hub.mode"])).toEqual(["subscribe", "evict-script-open-p1", "evict-script-open-r1", "evict-script-open-p2"]);
    expect(a.closes).toEqual({ C: { code: 1000, reason: expect.any(String) }, B: { code: 1000, reason: "unsubscribed" } });
    const syncError = a.frames.B![2] as any;
    expect(syncError.event.context[0].resource.issue[0].diagnostics).toMatch(/^C did not acknowledge/);
    expect((a.gets["after-update"] as any)["context.versionId"]).not.toBe((a.gets["after-open-r1"] as any)["context.versionId"]);
    expect(a.gets["final"]).toMatchObject({ "context.type": "Patient" });
    expect(a.subscriptions).toEqual([{ name: "A", events: A_EVENTS, connected: 1 }, { name: "D", events: "Patient-open,DiagnosticReport-open", connected: 1 }]);

    // And eviction between every step changed none of it.
    expect(b.statuses).toEqual(a.statuses);
    expect(b.gets).toEqual(a.gets);
    expect(b.frames).toEqual(a.frames);
    expect(b.closes).toEqual(a.closes);
    expect(b.log).toEqual(a.log);
    expect(b.subscriptions).toEqual(a.subscriptions);
  }, 60_000);
});
