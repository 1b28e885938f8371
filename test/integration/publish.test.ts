// fhircast.hl7.org/STU3/2-6-SendEventNotification.html Request Context Change: POST {hub.url} and {hub.url}/{topic},
// application/json or application/fhir+json; 202; every subscriber of the event gets it with the
// request's id and timestamp, the requester included, in the order the hub accepted them.
import { describe, expect, it } from "vitest";
import {
  asDistributedOpen, event, expectOutcome, hubFetch, patientClose, patientOpen, publish, publishInit, reportOpen, subscriber,
  uniqueTopic,
} from "../helpers/hub";

describe("publish endpoints and content types (fhircast.hl7.org/STU3/2-6-SendEventNotification.html)", () => {
  for (const contentType of ["application/json", "application/fhir+json", "application/json; charset=utf-8", "application/fhir+json;charset=UTF-8"]) {
    it(`SHALL accept a publish to {hub.url} as ${contentType} with 202 and no body`, async () => {
      const topic = uniqueTopic("pub");
      const { client } = await subscriber(topic, "Patient-open");
      const ev = patientOpen(topic);
      const res = await hubFetch("/api/hub", publishInit(ev, contentType));
      expect(res.status).toBe(202);
      expect(await res.text()).toBe("");
      expect(await client.frame(1)).toEqual(asDistributedOpen(ev));
      client.close();
    });
  }

  // POST {hub.url} exactly skips the router (src/worker.ts isHubPost); these spellings take the router.
  for (const path of ["/api/hub/", "/api/hub?via=router"]) {
    it(`treats POST ${path} as {hub.url}: publishes with 202 and refuses a bad event with the same 400`, async () => {
      const topic = uniqueTopic("pub");
      const { client } = await subscriber(topic, "Patient-open");
      const ev = patientOpen(topic);
      const res = await hubFetch(path, publishInit(ev));
      expect(res.status).toBe(202);
      expect(res.headers.get("Access-Control-Allow-Origin")).not.toBeNull();
      expect(await client.frame(1)).toEqual(asDistributedOpen(ev));
      const bad = { ...ev, id: "" };
      const viaRouter = await hubFetch(path, publishInit(bad));
      const direct = await hubFetch("/api/hub", publishInit(bad));
      expect(viaRouter.status).toBe(400);
      expect(await viaRouter.json()).toStrictEqual(await direct.json());
      client.close();
    });
  }

  for (const contentType of ["application/json", "application/fhir+json"]) {
    it(`accepts a publish to {hub.url}/{topic} (STU1/STU2 clients) as ${contentType} when the path topic equals event.hub.topic`, async () => {
      const topic = uniqueTopic("pub");
      const { client } = await subscriber(topic, "Patient-open");
      const ev = patientOpen(topic);
      const res = await hubFetch(`/api/hub/${encodeURIComponent(topic)}`, publishInit(ev, contentType));
      expect(res.status).toBe(202);
      expect(await client.frame(1)).toEqual(asDistributedOpen(ev));
      client.close();
    });
  }

  it("refuses a publish to {hub.url}/{topic} whose path topic differs from event.hub.topic (400), and delivers nothing to either topic", async () => {
    const topic = uniqueTopic("pub");
    const other = uniqueTopic("pubOther");
    const a = await subscriber(topic, "Patient-open");
    const b = await subscriber(other, "Patient-open");
    const res = await hubFetch(`/api/hub/${encodeURIComponent(other)}`, publishInit(patientOpen(topic)));
    await expectOutcome(res, 400, /topic/);
    await a.client.quiet(1);
    await b.client.quiet(1);
    a.client.close();
    b.client.close();
  });
});

describe("distribution (fhircast.hl7.org/STU3/2-6-SendEventNotification.html SHALL broadcast to all subscribers, including the requester, reusing the request id)", () => {
  it("every subscriber of the event receives it with the request's id and timestamp; the requester (itself a subscriber) too", async () => {
    const topic = uniqueTopic("pub");
    const subs = await Promise.all([1, 2, 3].map(() => subscriber(topic, "Patient-open,Patient-close")));
    const requester = subs[0]!; // the app that publishes is also subscribed
    const ev = patientClose(topic, "p9");
    expect((await publish(ev)).status).toBe(202);
    for (const s of subs) expect(await s.client.frame(1)).toEqual(ev); // a close is forwarded unchanged
    expect((await requester.client.frame(1)).id).toBe(ev.id);
    expect((await requester.client.frame(1)).timestamp).toBe(ev.timestamp);
    for (const s of subs) s.client.close();
  });

  it("an open is distributed as sent plus the hub's context.versionId, the same for every subscriber", async () => {
    const topic = uniqueTopic("pub");
    const a = await subscriber(topic, "DiagnosticReport-open");
    const b = await subscriber(topic, "DiagnosticReport-open,Patient-open");
    const ev = reportOpen(topic, "r1", "p1");
    expect((await publish(ev)).status).toBe(202);
    const fa = await a.client.frame(1);
    const fb = await b.client.frame(1);
    expect(fa).toEqual(asDistributedOpen(ev));
    expect(fb).toEqual(fa);
    a.client.close();
    b.client.close();
  });

  it("the hub assigns context.versionId on an open: a publisher-supplied value is replaced (fhircast.hl7.org/STU3/2-6-SendEventNotification.html)", async () => {
    const topic = uniqueTopic("pub");
    const { client } = await subscriber(topic, "Patient-open");
    const ev = event(topic, "Patient-open", patientOpen(topic).event.context, { "context.versionId": "chosen-by-client" });
    expect((await publish(ev)).status).toBe(202);
    const got = await client.frame(1);
    expect(got.event["context.versionId"]).toEqual(expect.any(String));
    expect(got.event["context.versionId"]).not.toBe("chosen-by-client");
    expect(got).toEqual({ ...ev, event: { ...ev.event, "context.versionId": got.event["context.versionId"] } });
    client.close();
  });

  it("subscribers not subscribed to the event receive nothing", async () => {
    const topic = uniqueTopic("pub");
    const yes = await subscriber(topic, "Patient-open");
    const no = await subscriber(topic, "Patient-close,Encounter-open,DiagnosticReport-open");
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    expect((await yes.client.frame(1)).id).toBe(ev.id);
    await no.client.quiet(1);
    yes.client.close();
    no.client.close();
  });

  it("subscribers of other topics receive nothing", async () => {
    const topic = uniqueTopic("pub");
    const other = await subscriber(uniqueTopic("pubOther"), "Patient-open");
    const own = await subscriber(topic, "Patient-open");
    expect((await publish(patientOpen(topic))).status).toBe(202);
    await own.client.frame(1);
    await other.client.quiet(1);
    own.client.close();
    other.client.close();
  });

  it("a publish to a topic with no subscribers is accepted (202)", async () => {
    const topic = uniqueTopic("pub");
    expect((await publish(patientOpen(topic))).status).toBe(202);
  });

  it("matches event names case-insensitively and distributes them in canonical spelling", async () => {
    const topic = uniqueTopic("pub");
    const { client } = await subscriber(topic, "patient-open,PATIENT-CLOSE");
    expect(client.frames[0]).toMatchObject({ "hub.events": "Patient-open,Patient-close" });
    const open = patientOpen(topic);
    open.event["hub.event"] = "PATIENT-OPEN";
    const close = patientClose(topic);
    close.event["hub.event"] = "patient-close";
    expect((await publish(open)).status).toBe(202);
    expect((await publish(close)).status).toBe(202);
    expect(await client.frame(1)).toEqual(asDistributedOpen({ ...open, event: { ...open.event, "hub.event": "Patient-open" } }));
    expect(await client.frame(2)).toEqual({ ...close, event: { ...close.event, "hub.event": "Patient-close" } });
    client.close();
  });

  it("forwards infrastructure events (SyncError, UserLogout, UserHibernate) unchanged to their subscribers", async () => {
    const topic = uniqueTopic("pub");
    const { client } = await subscriber(topic, "SyncError,UserLogout,UserHibernate");
    const sync = event(topic, "SyncError", [{
      key: "operationoutcome",
      resource: { resourceType: "OperationOutcome", issue: [{ severity: "warning", code: "processing", diagnostics: "AppId3 refused Patient-open" }] },
    }]);
    const logout = event(topic, "UserLogout", [{ key: "parameters", resource: { resourceType: "Parameters", parameter: [] } }]);
    const hibernate = event(topic, "UserHibernate", [{ key: "parameters", resource: { resourceType: "Parameters", parameter: [] } }]);
    for (const ev of [sync, logout, hibernate]) expect((await publish(ev)).status).toBe(202);
    expect((await client.waitFrames(4)).slice(1)).toEqual([sync, logout, hibernate]);
    client.close();
  });

  it("passes the reserved `extension` context key through unchanged", async () => {
    const topic = uniqueTopic("pub");
    const { client } = await subscriber(topic, "Patient-open");
    const ev = patientOpen(topic);
    ev.event.context.push({ key: "extension", data: { "com.example.flag": true } } as never);
    expect((await publish(ev)).status).toBe(202);
    expect(await client.frame(1)).toEqual(asDistributedOpen(ev));
    client.close();
  });
});

describe("order (fhircast.hl7.org/STU3/2-6-SendEventNotification.html: delivered in the order the hub accepted them)", () => {
  it("several rapid sequential publishes arrive in the same order", async () => {
    const topic = uniqueTopic("order");
    const { client } = await subscriber(topic, "Patient-open,Patient-close");
    const events = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? patientOpen(topic, `p${i}`) : patientClose(topic, `p${i - 1}`)));
    for (const ev of events) expect((await publish(ev)).status).toBe(202);
    const got = (await client.waitFrames(1 + events.length)).slice(1) as { id: string }[];
    expect(got.map((f) => f.id)).toEqual(events.map((e) => e.id));
    await client.quiet(1 + events.length);
    client.close();
  });

  it("concurrent publishes are delivered to every subscriber in one and the same order", async () => {
    const topic = uniqueTopic("order");
    const a = await subscriber(topic, "Patient-open");
    const b = await subscriber(topic, "Patient-open");
    const events = Array.from({ length: 10 }, (_, i) => patientOpen(topic, `p${i}`));
    const statuses = await Promise.all(events.map(async (ev) => (await publish(ev)).status));
    expect(statuses).toEqual(events.map(() => 202));
    const idsA = ((await a.client.waitFrames(11)).slice(1) as { id: string }[]).map((f) => f.id);
    const idsB = ((await b.client.waitFrames(11)).slice(1) as { id: string }[]).map((f) => f.id);
    expect(idsA).toEqual(idsB);
    expect([...idsA].sort()).toEqual(events.map((e) => e.id).sort());
    a.client.close();
    b.client.close();
  });
});
