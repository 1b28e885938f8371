// Confirmation and current-context replay (fhircast.hl7.org/STU3/2-4-Subscribing.html "Current context notification upon
// successful subscription"): after the confirmation, the most recent unclosed open per anchor type.
import { encounterOpen, patientClose, patientOpen, uid } from "../fixtures.ts";
import { type Check, assert } from "../types.ts";
import { SUBSCRIBING } from "./spec.ts";
import { contextResource, isEvent } from "./util.ts";

const REQ = "After a successful subscription the Hub SHALL send the current context: for each anchor type the most recent *-open event without a matching *-close, filtered to the subscribed events.";

export const replayChecks: Check[] = [
  {
    id: "replay.current-context",
    section: "replay",
    level: "SHALL",
    title: "A new subscriber receives the open context after its confirmation",
    requirement: REQ,
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const pid = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, pid));
      const { ws } = await ctx.subscriber(s, "Patient-open,Patient-close");
      await ws.waitFor((f) => isEvent(f, "Patient-open") && contextResource(f, "patient")?.id === pid, ctx.waitMs, `the replay of Patient-open (patient ${pid})`);
    },
  },
  {
    id: "replay.original-event",
    section: "replay",
    level: "SHOULD",
    title: "The replayed open keeps its original id and timestamp",
    requirement: "Replayed events are ordinary event notifications, indistinguishable from live ones; their timestamp is the time the event originally occurred.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const pid = uid("p");
      const open = patientOpen(s.topic, pid);
      await ctx.publishOk(s, open);
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const r = await ws.waitFor((f) => isEvent(f, "Patient-open") && contextResource(f, "patient")?.id === pid, ctx.waitMs, "the replayed Patient-open");
      assert(r.timestamp === open.timestamp, `replayed timestamp ${r.timestamp}, original ${open.timestamp}`);
      assert(r.id === open.id, `replayed id ${r.id}, original ${open.id}`);
    },
  },
  {
    id: "replay.filtered-by-subscription",
    section: "replay",
    level: "SHALL",
    title: "The replay holds no event the subscriber did not subscribe to",
    requirement: "The Hub SHALL NOT send events the Subscriber is not subscribed to (the replay is filtered to the granted events).",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      await ctx.publishOk(s, patientOpen(s.topic, uid("p")));
      const { ws } = await ctx.subscriber(s, "Patient-close");
      await ctx.sleep();
      const stray = ws.notifications.filter((f) => !isEvent(f, "Patient-close"));
      assert(stray.length === 0, `a Patient-close-only subscriber received ${stray.map((f) => f.event["hub.event"]).join(", ")}`);
    },
  },
  {
    id: "replay.closed-not-replayed",
    section: "replay",
    level: "SHALL",
    title: "A context that was closed is not replayed",
    requirement: REQ,
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const pid = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, pid));
      await ctx.publishOk(s, patientClose(s.topic, pid));
      const { ws } = await ctx.subscriber(s, "Patient-open,Patient-close");
      await ctx.sleep();
      assert(!ws.find((f) => isEvent(f, "Patient-open") && contextResource(f, "patient")?.id === pid), `the closed Patient-open (patient ${pid}) was replayed`);
    },
  },
  {
    id: "replay.each-anchor-type",
    section: "replay",
    level: "SHALL",
    title: "The replay holds the most recent open of each anchor type (Patient and Encounter)",
    requirement: REQ,
    spec: SUBSCRIBING,
    async run(ctx) {
      ctx.needEvents("Encounter-open");
      const s = await ctx.session();
      const pid = uid("p");
      const eid = uid("e");
      await ctx.publishOk(s, patientOpen(s.topic, pid));
      await ctx.publishOk(s, encounterOpen(s.topic, eid, pid));
      const { ws } = await ctx.subscriber(s, "Patient-open,Encounter-open");
      await ws.waitFor((f) => isEvent(f, "Encounter-open") && contextResource(f, "encounter")?.id === eid, ctx.waitMs, `the replayed Encounter-open (${eid})`);
      await ws.waitFor((f) => isEvent(f, "Patient-open") && contextResource(f, "patient")?.id === pid, ctx.waitMs, `the replayed Patient-open (${pid})`);
    },
  },
];
