// Several open contexts (fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html multi-tab guidance, with fhircast.hl7.org/STU3/2-9-GetCurrentContext.html and the fhircast.hl7.org/STU3/2-4-Subscribing.html replay).
import { patientClose, patientOpen, uid } from "../fixtures.ts";
import { type Check, assert } from "../types.ts";
import { GET_CONTEXT, MULTITAB, SUBSCRIBING } from "./spec.ts";
import { expectCurrentPatient, expectEmpty } from "./current-context.ts";
import { contextResource, isEvent } from "./util.ts";

export const multitabChecks: Check[] = [
  {
    id: "multi-tab.close-current-empties",
    section: "multi-tab",
    level: "SHALL",
    title: "Open P1, open P2, close P2: GET returns the empty context although P1 is still open",
    requirement: "If a context is closed and no other context is opened, the Hub SHALL return the empty context, even when older contexts are still open.",
    spec: GET_CONTEXT,
    requires: ["getCurrentContext"],
    async run(ctx) {
      const s = await ctx.session();
      const p1 = uid("p");
      const p2 = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, p1));
      await ctx.publishOk(s, patientOpen(s.topic, p2));
      await ctx.publishOk(s, patientClose(s.topic, p2));
      await expectEmpty(ctx, s, "closing the current of two open patients");
    },
  },
  {
    id: "multi-tab.close-background-keeps-current",
    section: "multi-tab",
    level: "SHOULD",
    title: "Open P1, open P2, close P1 (a background tab): P2 stays current",
    requirement: "Multiple contexts can be open; only the last opened is current. Closing another open context does not change the current one.",
    spec: MULTITAB,
    requires: ["getCurrentContext"],
    async run(ctx) {
      const s = await ctx.session();
      const p1 = uid("p");
      const p2 = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, p1));
      await ctx.publishOk(s, patientOpen(s.topic, p2));
      await ctx.publishOk(s, patientClose(s.topic, p1));
      await expectCurrentPatient(ctx, s, p2);
    },
  },
  {
    id: "multi-tab.reopen-switches",
    section: "multi-tab",
    level: "SHOULD",
    title: "Open P1, open P2, open P1 again (a tab switch) is accepted and makes P1 current",
    requirement: "Another *-open for an already open context makes it current again (a tab switch); it is not an error.",
    spec: MULTITAB,
    requires: ["getCurrentContext"],
    async run(ctx) {
      const s = await ctx.session();
      const p1 = uid("p");
      const p2 = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, p1));
      await ctx.publishOk(s, patientOpen(s.topic, p2));
      await ctx.publishOk(s, patientOpen(s.topic, p1));
      await expectCurrentPatient(ctx, s, p1);
    },
  },
  {
    id: "multi-tab.replay-after-background-close",
    section: "multi-tab",
    level: "SHALL",
    title: "Open P1, open P2, close P1: a new subscriber's replay is P2, not P1",
    requirement: "After subscribing, the Hub SHALL send the most recent *-open per anchor type that has no matching *-close.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const p1 = uid("p");
      const p2 = uid("p");
      await ctx.publishOk(s, patientOpen(s.topic, p1));
      await ctx.publishOk(s, patientOpen(s.topic, p2));
      await ctx.publishOk(s, patientClose(s.topic, p1));
      const { ws } = await ctx.subscriber(s, "Patient-open,Patient-close");
      await ws.waitFor((f) => isEvent(f, "Patient-open") && contextResource(f, "patient")?.id === p2, ctx.waitMs, `the replay of Patient-open ${p2}`);
      await ctx.sleep(300);
      assert(!ws.find((f) => isEvent(f, "Patient-open") && contextResource(f, "patient")?.id === p1), `the closed Patient-open ${p1} was replayed`);
    },
  },
];
