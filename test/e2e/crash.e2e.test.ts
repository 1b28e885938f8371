// Crash in the middle of a stream (issue 11): several topics publish a stream of opens, content
// updates (with versions), refused updates and closes against the hub on plain workerd
// (test/helpers/node/workerd-hub.ts: the bundle `wrangler deploy` uploads, `npm start`'s settings),
// which is killed with SIGKILL while requests are in flight. After a restart on the same state
// directory:
//  - every event that got a 202 is in the topic's state (open contexts, current context, content,
//    versions, event log), exactly as a model that applies the 202'd events in order predicts;
//  - none that was refused (4xx) is;
//  - a request whose answer was lost in the crash is either wholly applied or not at all;
//  - a re-subscriber gets the replay of the surviving context, and versions still gate updates.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentContext, event, patient, publish, removeDir, subscribe, tempStateDir, uniqueTopic, type WorkerdServer, WsClient } from "../helpers/server";
import { startWorkerdHub } from "../helpers/node/workerd-hub.ts";
import { inspect, type InspectView } from "./support/reliability";

const TOPICS = 4;
/** SIGKILL once this many publishes (all topics together) have been answered 202. */
const KILL_AFTER_ACCEPTED = 48;

let dir: string;
let server: WorkerdServer | undefined;
const clients: WsClient[] = [];

beforeAll(async () => {
  dir = await tempStateDir("fhircast-crash");
  server = await startWorkerdHub({ persistTo: dir, vars: { AUTH_MODE: "open" } });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  if (dir) await removeDir(dir);
});

// ---- the stream's events ---------------------------------------------------------------------------

type Ev = ReturnType<typeof event>;
const reportRes = (id: string, pid: string) => ({ resourceType: "DiagnosticReport", id, status: "unknown", subject: { reference: `Patient/${pid}` } });
const obs = (id: string) => ({ resourceType: "Observation", id, status: "preliminary", code: { text: `finding ${id}` } });
const drOpen = (t: string, r: string, p: string) => event(t, "DiagnosticReport-open", [{ key: "report", resource: reportRes(r, p) }, { key: "patient", resource: patient(p) }]);
const drClose = (t: string, r: string, p: string) => event(t, "DiagnosticReport-close", [{ key: "report", resource: reportRes(r, p) }, { key: "patient", resource: patient(p) }]);
const ptOpen = (t: string, p: string) => event(t, "Patient-open", [{ key: "patient", resource: patient(p) }]);
const ptClose = (t: string, p: string) => event(t, "Patient-close", [{ key: "patient", resource: patient(p) }]);
type Op = { method: "PUT"; resource: { resourceType: string; id: string } } | { method: "DELETE"; key: string };
function drUpdate(t: string, r: string, p: string, version: string, ops: Op[]): Ev {
  const entry = ops.map((o) => (o.method === "PUT" ? { request: { method: "PUT" }, resource: o.resource } : { request: { method: "DELETE", url: o.key } }));
  return event(
    t,
    "DiagnosticReport-update",
    [
      { key: "report", reference: { reference: `DiagnosticReport/${r}` } },
      { key: "patient", reference: { reference: `Patient/${p}` } },
      { key: "updates", resource: { resourceType: "Bundle", id: crypto.randomUUID(), type: "transaction", entry } },
    ],
    { "context.versionId": version },
  );
}

/** One publish of the stream and what the hub answered: a status, or "lost" when the crash ate the answer. */
interface Sent {
  ev: Ev;
  anchor: string;
  /** What the hub must answer: 202, or the refusal the step provokes. */
  want: number;
  ops?: Op[];
  status: number | "lost";
}

// ---- the model: the topic's state after applying events in order -----------------------------------

interface ModelContext {
  anchor: string;
  type: string;
  open: Ev;
  order: number;
  content: Map<string, unknown>;
}
interface Model {
  contexts: Map<string, ModelContext>;
  current: string | undefined;
  log: string[];
}

function apply(events: Sent[]): Model {
  const m: Model = { contexts: new Map(), current: undefined, log: [] };
  let order = 0;
  for (const s of events) {
    const name = s.ev.event["hub.event"];
    m.log.push(s.ev.id);
    if (name.endsWith("-open")) {
      const prev = m.contexts.get(s.anchor);
      m.contexts.set(s.anchor, { anchor: s.anchor, type: s.anchor.split("/")[0]!, open: s.ev, order: order++, content: prev?.content ?? new Map() });
      m.current = s.anchor;
    } else if (name.endsWith("-close")) {
      m.contexts.delete(s.anchor);
      if (m.current === s.anchor) m.current = undefined;
    } else if (name.endsWith("-update")) {
      const c = m.contexts.get(s.anchor)!;
      for (const o of s.ops!) {
        if (o.method === "PUT") c.content.set(`${o.resource.resourceType}/${o.resource.id}`, o.resource);
        else c.content.delete(o.key);
      }
    }
  }
  return m;
}

/** The parts of the inspector's view the model predicts (hub-made versionIds and seqs left out). */
function observed(view: InspectView, logLength: number) {
  const contexts = view.contexts
    .map((c) => {
      const { "context.versionId": _v, ...event } = c.event.event;
      return {
        anchor: c.anchor,
        current: c.current,
        open: { ...c.event, event },
        content: c.content.entry.map((e) => e.resource).sort((a, b) => String(a.id).localeCompare(String(b.id))),
      };
    })
    .sort((a, b) => a.anchor.localeCompare(b.anchor));
  const log = view.events.map((e) => e.event.id as string).reverse();
  return { contexts, log: log.slice(-logLength) };
}

function predicted(m: Model, logLength: number) {
  const contexts = [...m.contexts.values()]
    .map((c) => ({
      anchor: c.anchor,
      current: c.anchor === m.current,
      open: c.open,
      content: [...c.content.values()].sort((a: any, b: any) => String(a.id).localeCompare(String(b.id))),
    }))
    .sort((a, b) => a.anchor.localeCompare(b.anchor));
  return { contexts, log: m.log.slice(-Math.min(50, logLength)) };
}

// ---- one topic's publisher ------------------------------------------------------------------------

interface Stream {
  topic: string;
  sent: Sent[];
  /** Versions seen through GET, per anchor: the last one, and every one since superseded by a 202'd update. */
  known: Map<string, string>;
  superseded: Set<string>;
}

/**
 * Publishes a stream until the hub stops answering. Iteration k: DiagnosticReport-open r-k (current),
 * GET its version, update PUT obs-k-a, a stale update (409), an invalid publish (400), GET, update
 * PUT obs-k-b + DELETE obs-k-a, Patient-open p-k (current; the report stays open behind it), then the
 * closes of iteration k-1's report and patient.
 */
async function runStream(hubUrl: string, s: Stream, accepted: () => void): Promise<void> {
  const { topic } = s;
  const send = async (want: number, ev: Ev, anchor: string, ops?: Op[]): Promise<number | "lost"> => {
    const rec: Sent = { ev, anchor, want, ops, status: "lost" };
    s.sent.push(rec);
    const res = await publish(hubUrl, ev, { timeoutMs: 15_000 }); // throws when the server is gone: status stays "lost"
    rec.status = res.status;
    await res.text();
    if (res.status >= 500) throw new Error(`5xx from the hub: ${res.status}`);
    if (res.status === 202) accepted();
    return res.status;
  };
  const version = async (anchor: string): Promise<string> => {
    const ctx = await currentContext(hubUrl, topic);
    expect(ctx["context.type"]).toBe(anchor.split("/")[0]);
    const v = ctx["context.versionId"] as string;
    s.known.set(anchor, v);
    return v;
  };
  const expectStatus = (got: number | "lost", what: string) => {
    const want = s.sent[s.sent.length - 1]!.want;
    if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`);
  };
  try {
    for (let k = 0; k < 1000; k++) {
      const r = `r-${k}`;
      const p = `p-${k}`;
      const report = `DiagnosticReport/${r}`;
      expectStatus(await send(202, drOpen(topic, r, p), report), "DiagnosticReport-open");
      s.known.delete(report);
      const v1 = await version(report);
      const a: Op = { method: "PUT", resource: obs(`obs-${k}-a`) };
      expectStatus(await send(202, drUpdate(topic, r, p, v1, [a]), report, [a]), "update a");
      s.superseded.add(v1);
      s.known.delete(report);
      const stale: Op = { method: "PUT", resource: obs(`obs-${k}-stale`) };
      expectStatus(await send(409, drUpdate(topic, r, p, v1, [stale]), report, [stale]), "stale update");
      // Refused by validation: an unknown context key.
      const invalid = ptOpen(topic, `bad-${k}`);
      invalid.event.context.push({ key: "bogus", resource: patient(`bad-${k}`) });
      expectStatus(await send(400, invalid, `Patient/bad-${k}`), "invalid open");
      const v2 = await version(report);
      const b: Op[] = [{ method: "PUT", resource: obs(`obs-${k}-b`) }, { method: "DELETE", key: `Observation/obs-${k}-a` }];
      expectStatus(await send(202, drUpdate(topic, r, p, v2, b), report, b), "update b");
      s.superseded.add(v2);
      s.known.delete(report);
      expectStatus(await send(202, ptOpen(topic, p), `Patient/${p}`), "Patient-open");
      if (k > 0) {
        expectStatus(await send(202, drClose(topic, `r-${k - 1}`, `p-${k - 1}`), `DiagnosticReport/r-${k - 1}`), "report close");
        expectStatus(await send(202, ptClose(topic, `p-${k - 1}`), `Patient/p-${k - 1}`), "patient close");
      }
    }
  } catch (e) {
    // The crash: a network error ends the stream. Anything else is a real failure.
    const msg = String((e as Error).message ?? e);
    if (/expected|5xx/.test(msg)) throw e;
  }
}

describe("SIGKILL in the middle of a stream of publishes", () => {
  it(`${TOPICS} topics: every 202'd event survives, no refused one does, a lost answer is all-or-nothing, re-subscribers get the replay`, async () => {
    const hubUrl = server!.hubUrl;
    const streams: Stream[] = Array.from({ length: TOPICS }, () => ({ topic: uniqueTopic("crash"), sent: [], known: new Map(), superseded: new Set() }));
    let acceptedCount = 0;
    let killing: Promise<void> | undefined;
    const onAccepted = () => {
      acceptedCount++;
      if (acceptedCount === KILL_AFTER_ACCEPTED) killing = server!.kill(); // mid-stream: other requests are in flight
    };
    await Promise.all(streams.map((s) => runStream(hubUrl, s, onAccepted)));
    expect(killing, "the streams ended before the kill").toBeDefined();
    await killing;
    const port = server!.port;
    server = undefined;

    const lost = streams.flatMap((s) => s.sent.filter((x) => x.status === "lost"));
    const refused = streams.flatMap((s) => s.sent.filter((x) => typeof x.status === "number" && x.status !== 202));
    console.log(
      `[crash] killed after ${acceptedCount} accepted publishes; per topic: ${streams.map((s) => s.sent.filter((x) => x.status === 202).length).join(", ")} accepted; ` +
        `${refused.length} refused; ${lost.length} answers lost in the crash`,
    );

    server = await startWorkerdHub({ persistTo: dir, port, vars: { AUTH_MODE: "open" } });
    const hub = server;

    for (const s of streams) {
      const accepted = s.sent.filter((x) => x.status === 202);
      const lostHere = s.sent.filter((x) => x.status === "lost");
      // Publishes are sequential per topic, and a stream stops at its first network error.
      expect(lostHere.length).toBeLessThanOrEqual(1);
      expect(s.sent.slice(0, -1).every((x) => x.status !== "lost")).toBe(true);
      const view = await inspect(hub.origin, s.topic);
      const withoutLost = apply(accepted);
      const candidates = [{ model: withoutLost, applied: [] as Sent[] }];
      // A lost answer for an event the hub would have accepted: it may have been applied (the write
      // was durable, the 202 died with the process) or not; either way wholly.
      const maybe = lostHere.filter((x) => x.want === 202);
      if (maybe.length === 1) candidates.push({ model: apply([...accepted, maybe[0]!]), applied: [maybe[0]!] });
      const seen = observed(view, 50);
      const match = candidates.find((c) => JSON.stringify(predicted(c.model, c.model.log.length)) === JSON.stringify(seen));
      if (!match) {
        // Show the difference against the model without the lost request.
        expect(seen, `topic state after restart (lost: ${lostHere.map((x) => x.ev.event["hub.event"]).join(", ") || "none"})`).toEqual(
          predicted(withoutLost, withoutLost.log.length),
        );
      }
      const model = match!.model;
      console.log(
        `[crash] ${s.topic}: ${accepted.length} accepted, ${view.contexts.length} open contexts, ` +
          `lost: ${lostHere.map((x) => `${x.ev.event["hub.event"]} (${match!.applied.includes(x) ? "applied" : "not applied"})`).join(", ") || "none"}`,
      );

      // Refused events left no trace: not in the log, their resources not in any content.
      const logIds = new Set(view.events.map((e) => e.event.id as string));
      const allContent = JSON.stringify(view.contexts.map((c) => c.content));
      for (const r of s.sent.filter((x) => typeof x.status === "number" && x.status !== 202)) {
        expect(logIds.has(r.ev.id)).toBe(false);
        for (const o of r.ops ?? []) if (o.method === "PUT") expect(allContent).not.toContain(`"${o.resource.id}"`);
      }

      // GET current context: the last 202'd open (or the lost one, if it was applied), as sent, plus its content.
      const current = await currentContext(hub.hubUrl, s.topic);
      const cur = model.current ? model.contexts.get(model.current) : undefined;
      if (!cur) {
        expect(current).toEqual({ "context.type": "", context: [] });
      } else {
        expect(current["context.type"]).toBe(cur.type);
        const { content, rest } = splitContent(current.context);
        expect(rest).toEqual(cur.open.event.context);
        expect(content.entry.map((e: any) => e.resource).sort(byId)).toEqual([...cur.content.values()].sort(byId));
        expect(current["context.versionId"]).toBe(view.contexts.find((c) => c.anchor === cur.anchor)!.versionId);
      }

      // Versions: a version seen through GET is still current unless a 202'd (or applied lost) update
      // followed it; a superseded version is never current again.
      const appliedUpdates = new Set(match!.applied.filter((x) => x.ev.event["hub.event"].endsWith("-update")).map((x) => x.anchor));
      for (const c of view.contexts) {
        expect(s.superseded.has(c.versionId)).toBe(false);
        const known = s.known.get(c.anchor);
        if (known && !appliedUpdates.has(c.anchor)) expect(c.versionId, c.anchor).toBe(known);
      }

      // A re-subscriber gets the replay: per anchor type, the most recently opened open, in order,
      // with its original id and timestamp and the anchor's current version.
      const ws = await WsClient.connect(await subscribe(hub.hubUrl, s.topic, "Patient-open,DiagnosticReport-open,Patient-close,DiagnosticReport-close"));
      clients.push(ws);
      const latest = new Map<string, ModelContext>();
      for (const c of [...model.contexts.values()].sort((a, b) => a.order - b.order)) latest.set(c.type, c);
      const replayed = [...latest.values()].sort((a, b) => a.order - b.order);
      const frames = await ws.waitFrames(1 + replayed.length);
      expect(frames[0]).toMatchObject({ "hub.mode": "subscribe", "hub.topic": s.topic });
      expect(frames.slice(1)).toEqual(
        replayed.map((c) => ({ ...c.open, event: { ...c.open.event, "context.versionId": view.contexts.find((v) => v.anchor === c.anchor)!.versionId } })),
      );

      // Versions still gate updates after the restart: the current one is accepted, a superseded one is not.
      const report = [...model.contexts.values()].filter((c) => c.type === "DiagnosticReport").pop();
      if (report) {
        const rid = report.anchor.split("/")[1]!;
        const pid = (report.open.event.context[1] as any).resource.id as string;
        const stale = [...s.superseded].pop();
        const staleOp: Op = { method: "PUT", resource: obs("after-restart-stale") };
        if (stale) expect((await publish(hub.hubUrl, drUpdate(s.topic, rid, pid, stale, [staleOp]))).status).toBe(409);
        const v = view.contexts.find((c) => c.anchor === report.anchor)!.versionId;
        const okOp: Op = { method: "PUT", resource: obs("after-restart") };
        const res = await publish(hub.hubUrl, drUpdate(s.topic, rid, pid, v, [okOp]));
        expect(res.status, await res.text()).toBe(202);
      }
      ws.close();
    }
  }, 120_000);
});

function splitContent(context: any[]): { content: any; rest: any[] } {
  return { content: context.find((e) => e.key === "content")!.resource, rest: context.filter((e) => e.key !== "content") };
}

function byId(a: any, b: any): number {
  return String(a.id).localeCompare(String(b.id));
}
