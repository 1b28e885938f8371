// Publish / request context change (fhircast.hl7.org/STU3/2-6-SendEventNotification.html): accept or reject, broadcast to every
// subscriber including the requester with the request's id, and the variants real clients send.
import { notification, patient, patientClose, patientOpen, uid } from "../fixtures.ts";
import { type Check, assert, brief, skip, TransportError } from "../types.ts";
import { CONTENT, EVENTS, RECEIVE, SEND } from "./spec.ts";
import { assertRefused, is2xx } from "./util.ts";

export const publishChecks: Check[] = [
  {
    id: "publish.accepted-2xx",
    section: "publish",
    level: "SHALL",
    title: "A valid Patient-open POSTed to hub.url is accepted with 2xx",
    requirement: "The Hub SHALL either accept the context change by responding with any successful HTTP status or reject it with a 4xx or 5xx.",
    spec: SEND,
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.publishOk(s, patientOpen(s.topic, uid("p")));
      return `${res.status}`;
    },
  },
  {
    id: "publish.broadcast-with-request-id",
    section: "publish",
    level: "SHALL",
    title: "Every subscriber of the event receives it, with the request's id",
    requirement: "Once accepted, the Hub SHALL broadcast the event to all Subscribers and SHALL reuse the request's id.",
    spec: SEND,
    async run(ctx) {
      const s = await ctx.session();
      const a = await ctx.subscriber(s, "Patient-open");
      const b = await ctx.subscriber(s, "Patient-open,Patient-close");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      for (const [name, sub] of [["first", a], ["second", b]] as const) {
        const got = await sub.ws.waitFor((f) => f.event?.["hub.event"]?.toLowerCase() === "patient-open", ctx.waitMs, `Patient-open on the ${name} subscriber`);
        assert(got.id === open.id, `the ${name} subscriber received id ${brief(got.id)}, the request's id is ${open.id}`);
      }
    },
  },
  {
    id: "publish.requester-receives",
    section: "publish",
    level: "SHALL",
    title: "The requesting subscriber receives its own event",
    requirement: "The Hub SHALL broadcast to all Subscribers, including the original requesting Subscriber.",
    spec: SEND,
    async run(ctx) {
      const s = await ctx.session({ clientId: "fhircast-conformance-requester" });
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await ws.waitEvent(open.id, ctx.waitMs, "the requester's own Patient-open");
    },
  },
  {
    id: "publish.only-subscribed-events",
    section: "publish",
    level: "SHALL",
    title: "A subscriber never receives an event it did not subscribe to",
    requirement: "The Hub SHALL NOT send a Subscriber events to which it is not subscribed.",
    spec: RECEIVE,
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-close");
      const pid = uid("p");
      const open = patientOpen(s.topic, pid);
      const close = patientClose(s.topic, pid);
      await ctx.publishOk(s, open);
      await ctx.publishOk(s, close);
      await ws.waitEvent(close.id, ctx.waitMs, "Patient-close (subscribed)");
      await ctx.sleep(300);
      const stray = ws.notifications.filter((f) => f.event["hub.event"]?.toLowerCase() !== "patient-close");
      assert(stray.length === 0, `a Patient-close-only subscriber received ${stray.map((f) => f.event["hub.event"]).join(", ")}`);
    },
  },
  {
    id: "publish.case-insensitive-event",
    section: "publish",
    level: "SHALL",
    title: "An event published as PATIENT-OPEN reaches Patient-open subscribers",
    requirement: "Hubs and Subscribers SHALL be case insensitive for event-names.",
    spec: EVENTS,
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = notification(s.topic, "PATIENT-OPEN", [{ key: "patient", resource: patient(uid("p")) }]);
      await ctx.publishOk(s, open);
      const got = await ws.waitEvent(open.id, ctx.waitMs, "PATIENT-OPEN delivered to a Patient-open subscriber");
      return `delivered as "${got.event["hub.event"]}"`;
    },
  },
  {
    id: "publish.rejects-malformed",
    section: "publish",
    level: "SHOULD",
    title: "A publish that is not JSON, or has no event, is rejected with 4xx",
    requirement: "The Hub SHALL either accept or reject (4xx/5xx); a malformed request is the client's error (4xx), and is not broadcast.",
    spec: SEND,
    async run(ctx) {
      const s = await ctx.session();
      const noEvent = await ctx.publish(s, { timestamp: new Date().toISOString(), id: crypto.randomUUID() });
      assert(noEvent.status >= 400 && noEvent.status <= 499, `a publish without "event" answered ${noEvent.status} ${brief(noEvent.text)}`);
      const notJson = await ctx.publish(s, "{not json", { contentType: "application/json" });
      assert(notJson.status >= 400 && notJson.status <= 499, `a body that is not JSON answered ${notJson.status} ${brief(notJson.text)}`);
    },
  },
  {
    id: "publish.too-large-413",
    section: "publish",
    level: "SHALL",
    title: "An event larger than the hub accepts is refused with 413",
    requirement: "If the content is too large, the recipient SHALL either return 413 synchronously or send a SyncError with issue.code too-long.",
    spec: CONTENT,
    async run(ctx) {
      const s = await ctx.session();
      const big = patient(uid("p"));
      big.text = { status: "generated", div: `<div xmlns="http://www.w3.org/1999/xhtml">${"x".repeat(6 * 1024 * 1024)}</div>` };
      const body = notification(s.topic, "Patient-open", [{ key: "patient", resource: big }]);
      let status: number;
      let text: string;
      try {
        ({ status, text } = await ctx.publish(s, body));
      } catch (e) {
        // Unless the hub is gone altogether (then the runner reports the stop).
        if (e instanceof TransportError && (await ctx.shared.probe())) throw e;
        return skip(`the hub dropped the connection on a 6 MB body without answering: ${(e as Error).message}`);
      }
      if (is2xx(status)) skip("the hub accepted a 6 MB event: its limit is higher than this kit tests");
      assert(status === 413, `a 6 MB event answered ${status} ${brief(text)}, expected 413`);
    },
  },
  {
    id: "publish.topic-in-path",
    section: "publish",
    level: "LENIENCY",
    title: "POST {hub.url}/{topic} (STU1/STU2 clients, Rad AI, OHIF) is accepted and broadcast",
    requirement: "Interoperability: STU1/STU2 examples and deployed clients publish to {hub.url}/{topic}; STU3 publishes to hub.url.",
    spec: SEND,
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open, { topicPath: true });
      await ws.waitEvent(open.id, ctx.waitMs, "the event published on {hub.url}/{topic}");
    },
  },
  {
    id: "publish.fhir-json",
    section: "publish",
    level: "LENIENCY",
    title: "A publish sent as application/fhir+json (the spec's own example) is accepted",
    requirement: "Interoperability: the spec's request example uses Content-Type application/fhir+json; whether JSON or FHIR+JSON is an open question.",
    spec: SEND,
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open, { contentType: "application/fhir+json" });
      await ws.waitEvent(open.id, ctx.waitMs, "the event published as application/fhir+json");
      const open2 = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open2, { contentType: "application/json; charset=utf-8" });
      await ws.waitEvent(open2.id, ctx.waitMs, "the event published as application/json; charset=utf-8");
    },
  },
  {
    id: "publish.refused-not-broadcast",
    section: "publish",
    level: "SHALL",
    title: "A rejected publish is not broadcast",
    requirement: "The Hub SHALL either accept (and broadcast) or reject the request; a rejected event reaches nobody.",
    spec: SEND,
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      // Patient-open without its required patient resource.
      const bad = notification(s.topic, "Patient-open", []);
      const res = await ctx.publish(s, bad);
      if (is2xx(res.status)) skip(`the hub accepted a Patient-open without a patient (${res.status}); it may validate asynchronously`);
      assertRefused(res.status, res.text, "Patient-open without a patient");
      const good = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, good);
      await ws.waitEvent(good.id, ctx.waitMs);
      assert(!ws.find((f) => f.id === bad.id), "the rejected event was delivered");
    },
  },
];
