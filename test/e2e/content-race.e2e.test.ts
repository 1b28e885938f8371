// End to end: content sharing under concurrency (fhircast.hl7.org/STU3/2-10-ContentSharing.html). Many DiagnosticReport-update
// requests based on the same context.versionId race over real HTTP against the real local server:
// exactly one SHALL be accepted (202), every other one refused with 409, and the content holds only
// the winner's change, once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { currentContext, devToken, event, patient, publish, subscribe, uniqueTopic, WsClient } from "../helpers/server";
import { type SharedHub, sharedHub } from "../helpers/node/shared-hub";

const CONCURRENT_UPDATES = 60;

// The shared default hub (e2e-shared project), on this file's own topic.
let server: SharedHub | undefined;
let listener: WsClient | undefined;

beforeAll(async () => {
  server = await sharedHub();
});

afterAll(() => {
  listener?.close();
});

function update(topic: string, reportId: string, versionId: string, observationId: string) {
  return event(
    topic,
    "DiagnosticReport-update",
    [
      { key: "report", reference: { reference: `DiagnosticReport/${reportId}` } },
      {
        key: "updates",
        resource: {
          resourceType: "Bundle",
          type: "transaction",
          entry: [
            {
              request: { method: "PUT" },
              resource: { resourceType: "Observation", id: observationId, status: "final", code: { text: "x" } },
            },
          ],
        },
      },
    ],
    { "context.versionId": versionId },
  );
}

describe("content sharing: concurrent updates on one version", () => {
  it(`accepts exactly one of ${CONCURRENT_UPDATES} concurrent updates based on the same versionId; the rest get 409`, async () => {
    const hubUrl = server!.hubUrl;
    const topic = uniqueTopic("race");
    const reportId = `r-${crypto.randomUUID().slice(0, 8)}`;
    const token = await devToken(server!.origin, topic);

    listener = await WsClient.connect(await subscribe(hubUrl, topic, "DiagnosticReport-open,DiagnosticReport-update", { token }));
    await listener.waitFrames(1);

    const open = event(topic, "DiagnosticReport-open", [
      { key: "report", resource: { resourceType: "DiagnosticReport", id: reportId, status: "unknown", subject: { reference: "Patient/race-p1" } } },
      { key: "patient", resource: patient("race-p1") },
    ]);
    const opened = await publish(hubUrl, open, { token });
    expect(opened.status, await opened.clone().text()).toBe(202);
    await listener.waitFrames(2);

    const before = await currentContext(hubUrl, topic, { token });
    expect(before["context.type"]).toBe("DiagnosticReport");
    const v0 = before["context.versionId"] as string;
    expect(typeof v0).toBe("string");

    const updates = Array.from({ length: CONCURRENT_UPDATES }, (_, i) => update(topic, reportId, v0, `obs-${i}`));
    const responses = await Promise.all(
      updates.map(async (u) => {
        const res = await publish(hubUrl, u, { token, timeoutMs: 30_000 });
        return { status: res.status, body: await res.text() };
      }),
    );

    const statuses = responses.map((r) => r.status);
    const accepted = statuses.flatMap((s, i) => (s === 202 ? [i] : []));
    const others = responses.filter((r) => r.status !== 202 && r.status !== 409);
    expect(others, `responses other than 202/409: ${JSON.stringify(others.slice(0, 3))}`).toEqual([]);
    expect(accepted, `statuses: ${JSON.stringify(statuses)}`).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(CONCURRENT_UPDATES - 1);
    const winner = updates[accepted[0]!]!;
    const winnerObservation = (winner.event.context[1] as any).resource.entry[0].resource;

    // A 409 names the problem (an OperationOutcome about the version).
    const refused = responses.find((r) => r.status === 409)!;
    expect(refused.body).toMatch(/versionId|version/i);

    const after = await currentContext(hubUrl, topic, { token });
    expect(after["context.type"]).toBe("DiagnosticReport");
    expect(after["context.versionId"]).not.toBe(v0);
    const content = (after.context as any[]).filter((e) => e.key === "content");
    expect(content).toHaveLength(1);
    const entries = content[0].resource.entry as any[];
    expect(content[0].resource.resourceType).toBe("Bundle");
    expect(entries.map((e) => e.resource)).toEqual([winnerObservation]);

    // Subscribers saw exactly that one update, with the new version and the prior one.
    const frames = await listener.waitFrames(3);
    const delivered = frames[2];
    expect(delivered.id).toBe(winner.id);
    expect(delivered.event["hub.event"]).toBe("DiagnosticReport-update");
    expect(delivered.event["context.priorVersionId"]).toBe(v0);
    expect(delivered.event["context.versionId"]).toBe(after["context.versionId"]);
    await new Promise((r) => setTimeout(r, 300));
    expect(listener.frames.filter((f) => f.event?.["hub.event"] === "DiagnosticReport-update")).toHaveLength(1);

    // A follow-up update based on the new version is accepted; one based on the old is not.
    const next = update(topic, reportId, after["context.versionId"], "obs-next");
    expect((await publish(hubUrl, next, { token })).status).toBe(202);
    expect((await publish(hubUrl, update(topic, reportId, v0, "obs-stale"), { token })).status).toBe(409);
    const final = await currentContext(hubUrl, topic, { token });
    const finalIds = ((final.context as any[]).find((e) => e.key === "content").resource.entry as any[]).map((e) => e.resource.id).sort();
    expect(finalIds).toEqual([winnerObservation.id, "obs-next"].sort());
  });
});
