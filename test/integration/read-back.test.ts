// Input accepted with 202 never makes a later read fail (security review, issue 20, finding 1): the
// hub refuses at publish what it could not serve back — JSON nested deeper than MAX_JSON_DEPTH, content
// beyond MAX_CONTENT_BYTES_PER_ANCHOR / MAX_CONTENT_BYTES_PER_TOPIC — and the inspector bounds what it
// returns, so that GET, the replay on subscribe and the inspector answer whole after any accepted
// sequence, also after eviction and restart.
import { evictDurableObject } from "cloudflare:test";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  contentUpdate, currentContext, event, expectOutcome, hubFetch, mintToken, observation, patient, patientOpen, publish, putEntry, reportOpen,
  subscriber, topicSql, topicStub, uniqueTopic,
} from "../helpers/hub";

/** The defaults of wrangler.toml (docs/operations.md "Settings"), which this project runs with. */
const PER_ANCHOR = 4_194_304;
const PER_TOPIC = 8_388_608;
const MAX_DEPTH = 64;

const inspectorToken = () => mintToken({ scope: "fhircast/*.read fhircast-hub/inspect", client_id: "inspector" });

/** An array nested `depth` deep around a number, as JSON text (built without recursion). */
const deepArray = (depth: number) => `${"[".repeat(depth)}1${"]".repeat(depth)}`;

/** A Patient-open whose resource carries `nested` (raw JSON text) — what JSON.stringify cannot build when deep. */
function rawPatientOpen(topic: string, id: string, nested: string): string {
  const ev = patientOpen(topic, id);
  const text = JSON.stringify(ev);
  // Splice the raw value in as the resource's "extension" member.
  return text.replace(`"resourceType":"Patient",`, `"resourceType":"Patient","extension":${nested},`);
}

const postRaw = (body: string) => hubFetch("/api/hub", { method: "POST", headers: { "Content-Type": "application/json" }, body });

/** An Observation whose JSON is about `bytes` long. */
const bigObservation = (id: string, bytes: number) => observation(id, "p1", { note: [{ text: "x".repeat(bytes) }] });

async function inspectView(topic: string): Promise<{ status: number; view: any; bytes: number }> {
  const res = await hubFetch(`/api/inspect/${encodeURIComponent(topic)}`, { headers: { Authorization: `Bearer ${await inspectorToken()}` } });
  const text = await res.text();
  return { status: res.status, view: res.status === 200 ? JSON.parse(text) : text, bytes: text.length };
}

async function getStatus(topic: string): Promise<number> {
  const res = await hubFetch(`/api/hub/${encodeURIComponent(topic)}`);
  await res.text();
  return res.status;
}

/** Every read the hub offers answers 200 (and the replay arrives): GET, the inspector, a new subscriber. */
async function expectReadable(topic: string, replayed: number) {
  expect(await getStatus(topic)).toBe(200);
  const inspected = await inspectView(topic);
  expect(inspected.status).toBe(200);
  const { client } = await subscriber(topic, "Patient-open,DiagnosticReport-open", {}, replayed);
  expect(client.frames).toHaveLength(1 + replayed);
  client.close();
}

/** Opens DiagnosticReport/r1 and returns its versionId. */
async function openReport(topic: string, id = "r1"): Promise<string> {
  expect((await publish(reportOpen(topic, id))).status).toBe(202);
  const rows = await topicSql<{ version_id: string }>(topic, `SELECT version_id FROM contexts WHERE anchor = ?`, `DiagnosticReport/${id}`);
  return rows[0]!.version_id;
}

async function versionOf(topic: string, anchor: string): Promise<string> {
  return (await topicSql<{ version_id: string }>(topic, `SELECT version_id FROM contexts WHERE anchor = ?`, anchor))[0]!.version_id;
}

describe("JSON nesting depth (MAX_JSON_DEPTH = 64)", () => {
  it("a 10 KB Patient-open nesting arrays 5,000 deep: 400 naming the limit, nothing stored, GET and the inspector still 200", async () => {
    const topic = uniqueTopic("deep");
    const good = patientOpen(topic, "p1");
    expect((await publish(good)).status).toBe(202);
    const before = await currentContext(topic);
    const body = rawPatientOpen(topic, "p2", deepArray(5000));
    expect(body.length).toBeGreaterThan(10_000);
    await expectOutcome(await postRaw(body), 400, /nest/, /64/, /MAX_JSON_DEPTH/);
    // Also through POST {hub.url}/{topic}.
    const res = await hubFetch(`/api/hub/${encodeURIComponent(topic)}`, { method: "POST", headers: { "Content-Type": "application/json" }, body });
    await expectOutcome(res, 400, /MAX_JSON_DEPTH/);
    expect(await currentContext(topic)).toStrictEqual(before);
    expect((await topicSql(topic, `SELECT seq FROM events`)).length).toBe(1);
    await expectReadable(topic, 1);
  });

  it("400,000 deep (800 KB): 400 as well, answered without exhausting the stack", async () => {
    const topic = uniqueTopic("deep");
    await expectOutcome(await postRaw(rawPatientOpen(topic, "p1", deepArray(400_000))), 400, /MAX_JSON_DEPTH/);
    expect(await getStatus(topic)).toBe(200);
  });

  it("brackets inside strings do not count; 64 levels pass and 65 do not", async () => {
    const topic = uniqueTopic("deep");
    const inString = patientOpen(topic, "p1");
    (inString.event.context[0] as { resource: Record<string, unknown> }).resource.text = { div: `${"[{".repeat(5000)}\\"\u00e9` };
    expect((await publish(inString)).status).toBe(202);
    // The envelope is level 1, event 2, context 3, its entry 4, the resource 5: the extension's array is 6.
    expect((await postRaw(rawPatientOpen(topic, "p2", deepArray(MAX_DEPTH - 5)))).status).toBe(202);
    await expectOutcome(await postRaw(rawPatientOpen(topic, "p3", deepArray(MAX_DEPTH - 4))), 400, /MAX_JSON_DEPTH/);
    await expectReadable(topic, 1);
  });

  it("ordinary resources pass: extension nested 20 levels deep in an open and inside an update's resource", async () => {
    const topic = uniqueTopic("deep");
    let ext: Record<string, unknown> = { url: "http://example.org/leaf", valueString: "leaf" };
    for (let i = 0; i < 20; i++) ext = { url: `http://example.org/level-${i}`, extension: [ext] };
    const open = event(topic, "Patient-open", [{ key: "patient", resource: { ...patient("p1"), extension: [ext] } }]);
    expect((await publish(open)).status).toBe(202);
    const version = await openReport(topic);
    const update = contentUpdate(topic, "DiagnosticReport/r1", version, [putEntry(observation("o1", "p1", { extension: [ext] }))]);
    expect((await publish(update)).status).toBe(202);
    expect(((await currentContext(topic)).context as unknown[]).length).toBe(3);
  });
});

describe("shared content per anchor and per topic", () => {
  it("an ordinary 200-entry update (the per-update maximum) passes and reads back whole", async () => {
    const topic = uniqueTopic("content-200");
    const version = await openReport(topic);
    const entries = Array.from({ length: 200 }, (_, i) => putEntry(observation(`o${i}`, "p1", { valueString: "finding ".repeat(20) })));
    expect((await publish(contentUpdate(topic, "DiagnosticReport/r1", version, entries))).status).toBe(202);
    const content = ((await currentContext(topic)).context as { key: string; resource?: { entry: unknown[] } }[]).find((e) => e.key === "content");
    expect(content!.resource!.entry).toHaveLength(200);
    const { view } = await inspectView(topic);
    expect(view.contexts[0].content.entry).toHaveLength(200);
    expect(view.contexts[0].content.truncated).toBeUndefined();
  });

  it("updates of 0.9 MiB each: 202 up to MAX_CONTENT_BYTES_PER_ANCHOR, then 413 naming it; state unchanged; GET, inspector and replay 200", async () => {
    const topic = uniqueTopic("content-size");
    let version = await openReport(topic);
    let accepted = 0;
    let refused: Response | undefined;
    for (let i = 0; i < 40 && !refused; i++) {
      const res = await publish(contentUpdate(topic, "DiagnosticReport/r1", version, [putEntry(bigObservation(`o${i}`, 900_000))]));
      if (res.status === 202) {
        accepted++;
        version = await versionOf(topic, "DiagnosticReport/r1");
      } else refused = res;
    }
    expect(accepted).toBe(Math.floor(PER_ANCHOR / 900_000));
    const before = await currentContext(topic);
    await expectOutcome(refused!, 413, "DiagnosticReport/r1", "MAX_CONTENT_BYTES_PER_ANCHOR", String(PER_ANCHOR));
    expect(await currentContext(topic)).toStrictEqual(before);
    // Replacing a resource with one of the same size, or deleting one, still works at the limit.
    const same = await publish(contentUpdate(topic, "DiagnosticReport/r1", version, [putEntry(bigObservation("o0", 900_000))]));
    expect(same.status).toBe(202);
    await expectReadable(topic, 1);
  });

  it("content across anchors: refused beyond MAX_CONTENT_BYTES_PER_TOPIC (413 naming it); closing an anchor frees its share", async () => {
    const topic = uniqueTopic("content-topic");
    let refusal: Response | undefined;
    let total = 0;
    for (let r = 0; r < 4 && !refusal; r++) {
      let version = await openReport(topic, `r${r}`);
      for (let i = 0; i < 4 && !refusal; i++) {
        const res = await publish(contentUpdate(topic, `DiagnosticReport/r${r}`, version, [putEntry(bigObservation(`o${i}`, 900_000))]));
        if (res.status !== 202) refusal = res;
        else {
          total += 900_000;
          version = await versionOf(topic, `DiagnosticReport/r${r}`);
        }
      }
    }
    expect(refusal).toBeDefined();
    await expectOutcome(refusal!, 413, "MAX_CONTENT_BYTES_PER_TOPIC", String(PER_TOPIC));
    expect(total).toBeLessThanOrEqual(PER_TOPIC);
    const held = await topicSql<{ n: number }>(topic, `SELECT sum(octet_length(resource)) AS n FROM content`);
    expect(held[0]!.n).toBeLessThanOrEqual(PER_TOPIC);
    await expectReadable(topic, 1);
    // The inspector shows content entries while its budget lasts and counts the rest in a marker.
    const { view } = await inspectView(topic);
    const rows = (await topicSql(topic, `SELECT rowid FROM content`)).length;
    const shown = view.contexts.reduce((n: number, c: any) => n + c.content.entry.length, 0);
    const leftOut = view.contexts.reduce((n: number, c: any) => n + (c.content.truncated?.entries ?? 0), 0);
    expect(leftOut).toBeGreaterThan(0);
    expect(shown + leftOut).toBe(rows);
    // Closing the first report drops its content; the refused update then fits.
    expect((await publish(event(topic, "DiagnosticReport-close", reportOpen(topic, "r0").event.context))).status).toBe(202);
    const last = (await topicSql<{ anchor: string }>(topic, `SELECT anchor FROM contexts ORDER BY opened_seq DESC LIMIT 1`))[0]!.anchor;
    const retry = await publish(contentUpdate(topic, last, await versionOf(topic, last), [putEntry(bigObservation("o9", 900_000))]));
    expect(retry.status).toBe(202);
  });
});

describe("the inspector answers whatever the topic holds", () => {
  it("20 opens of 900 KB: the inspector answers 200 within its budget, large items replaced by a marker", async () => {
    const topic = uniqueTopic("inspect-big");
    const opens: ReturnType<typeof patientOpen>[] = [];
    for (let i = 0; i < 20; i++) {
      const ev = patientOpen(topic, `p${i}`);
      (ev.event.context[0] as { resource: Record<string, unknown> }).resource.text = { status: "generated", div: "x".repeat(900_000) };
      expect((await publish(ev)).status).toBe(202);
      opens.push(ev);
    }
    const { status, view, bytes } = await inspectView(topic);
    expect(status).toBe(200);
    expect(bytes).toBeLessThan(8 * 1024 * 1024);
    expect(view.contexts).toHaveLength(20);
    expect(view.events).toHaveLength(20);
    const truncated = [...view.contexts.map((c: any) => c.event), ...view.events.map((e: any) => e.event)].filter((e: any) => e.truncated);
    expect(truncated.length).toBeGreaterThan(0);
    expect(truncated[0].truncated).toMatchObject({ bytes: expect.any(Number) });
    // Newest first, whole while they fit (4 of 900 KB in 4 MiB); a marker keeps what identifies the event.
    expect(view.contexts.slice(0, 4).map((c: any) => c.event.truncated)).toEqual([undefined, undefined, undefined, undefined]);
    expect(view.contexts[0].event.event.context).toEqual(opens[19]!.event.context);
    const oldest = view.contexts[19].event;
    expect(oldest).toMatchObject({ timestamp: opens[0]!.timestamp, id: opens[0]!.id, event: { "hub.topic": topic, "hub.event": "Patient-open", context: [] } });
    expect(oldest.truncated).toMatchObject({ bytes: expect.any(Number), reason: expect.stringContaining("budget") });
    expect(view.events[0].event).toMatchObject({ id: opens[19]!.id, timestamp: opens[19]!.timestamp, event: { "hub.topic": topic, "hub.event": "Patient-open" } });
    await expectReadable(topic, 1);
  });
});

describe("after eviction and restart", () => {
  it("a topic at its content limit reads back whole after eviction and after a restart", async () => {
    const topic = uniqueTopic("content-evict");
    let version = await openReport(topic);
    for (let i = 0; i < 4; i++) {
      expect((await publish(contentUpdate(topic, "DiagnosticReport/r1", version, [putEntry(bigObservation(`o${i}`, 900_000))]))).status).toBe(202);
      version = await versionOf(topic, "DiagnosticReport/r1");
    }
    const before = await currentContext(topic);
    await evictDurableObject(topicStub(topic));
    expect(await currentContext(topic)).toStrictEqual(before);
    await expectReadable(topic, 1);
    await evictDurableObject(topicStub(topic), { webSockets: "close" });
    expect(await currentContext(topic)).toStrictEqual(before);
    await expectReadable(topic, 1);
  });
});

describe("property: no accepted sequence of publishes makes a read fail", () => {
  it("random opens, large updates, selects and closes: every answer < 500 and GET, inspector and replay answer 200", async () => {
    type Step =
      | { kind: "open"; report: number; pad: number }
      | { kind: "deep"; depth: number }
      | { kind: "update"; report: number; entries: { id: number; bytes: number }[] }
      | { kind: "select"; report: number }
      | { kind: "close"; report: number };
    const report = fc.integer({ min: 0, max: 2 });
    const step: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant("open" as const), report, pad: fc.constantFrom(0, 1000, 500_000) }),
      fc.record({
        kind: fc.constant("update" as const),
        report,
        entries: fc.uniqueArray(fc.record({ id: fc.integer({ min: 0, max: 9 }), bytes: fc.constantFrom(100, 200_000, 900_000) }), {
          selector: (e) => e.id, minLength: 1, maxLength: 2,
        }),
      }),
      fc.record({ kind: fc.constant("deep" as const), depth: fc.constantFrom(10, 60, 5000, 50_000) }),
      fc.record({ kind: fc.constant("select" as const), report }),
      fc.record({ kind: fc.constant("close" as const), report }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 12 }), async (steps) => {
        const topic = uniqueTopic("prop");
        for (const s of steps) {
          const anchor = `DiagnosticReport/r${"report" in s ? s.report : 0}`;
          let res: Response;
          if (s.kind === "open") {
            const ev = reportOpen(topic, `r${s.report}`);
            (ev.event.context[0] as { resource: Record<string, unknown> }).resource.conclusion = "x".repeat(s.pad);
            res = await publish(ev);
          } else if (s.kind === "update") {
            const rows = await topicSql<{ version_id: string }>(topic, `SELECT version_id FROM contexts WHERE anchor = ?`, anchor).catch(() => []);
            const entries = s.entries.map((e) => putEntry(bigObservation(`o${e.id}`, e.bytes)));
            res = await publish(contentUpdate(topic, anchor, rows[0]?.version_id ?? "none", entries));
          } else if (s.kind === "deep") {
            res = await postRaw(rawPatientOpen(topic, "p1", deepArray(s.depth)));
          } else if (s.kind === "select") {
            res = await publish(event(topic, "DiagnosticReport-select", [
              { key: "report", reference: { reference: anchor } },
              { key: "select", reference: [{ reference: "Observation/o1" }] },
            ]));
          } else {
            res = await publish(event(topic, "DiagnosticReport-close", reportOpen(topic, `r${s.report}`).event.context));
          }
          const text = await res.text();
          if (res.status >= 500) throw new Error(`${s.kind}: ${res.status} ${text}`);
        }
        expect(await getStatus(topic)).toBe(200);
        const inspected = await inspectView(topic);
        expect(inspected.status).toBe(200);
        const types = (await topicSql(topic, `SELECT DISTINCT anchor_type FROM contexts`).catch(() => [])).length;
        const { client } = await subscriber(topic, "DiagnosticReport-open,Patient-open", {}, types);
        client.close();
      }),
      { numRuns: 6, endOnFailure: true },
    );
  }, 120_000);
});
