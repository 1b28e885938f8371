// Lease expiry (fhircast.hl7.org/STU3/2-4-Subscribing.html): at the end of the lease the hub unsubscribes and closes.
import { type Check, assert, brief, skip } from "../types.ts";
import { SUBSCRIBING } from "./spec.ts";

/** Longest lease the kit waits out; a hub that grants more to a 2 s request cannot be tested quickly. */
const MAX_WAIT_LEASE = 8;

export const leaseChecks: Check[] = [
  {
    id: "lease.expiry-closes-socket",
    section: "lease",
    level: "SHALL",
    title: "When the lease expires the hub unsubscribes and closes the socket",
    requirement: "The Hub SHALL unsubscribe the Subscriber and close the WebSocket once hub.lease_seconds has expired (it MAY send a denial first).",
    spec: SUBSCRIBING,
    slow: true,
    async run(ctx) {
      const s = await ctx.session();
      const { ws, confirmation } = await ctx.subscriber(s, "Patient-open", { "hub.lease_seconds": "2" });
      const lease = confirmation["hub.lease_seconds"];
      assert(typeof lease === "number", `hub.lease_seconds is ${brief(lease)}`);
      if (lease > MAX_WAIT_LEASE) skip(`asked for a 2 s lease, the hub granted ${lease} s (more than the ${MAX_WAIT_LEASE} s this kit waits)`);
      const closed = await ws.waitClose(lease * 1000 + ctx.waitMs);
      assert(closed, `the socket was still open ${lease} s + ${ctx.waitMs} ms after a ${lease} s lease`);
      const denial = ws.find((f) => f["hub.mode"] === "denied");
      return `${ws.describeClose(closed)}${denial ? " after a denial" : " (no denial frame)"}`;
    },
  },
];
