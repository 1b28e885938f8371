// Security (fhircast.hl7.org/STU3/2_Specification.html, fhircast.hl7.org/STU3/2-2-FhircastScopes.html scopes, fhircast.hl7.org/STU3/2-4-Subscribing.html endpoints, fhircast.hl7.org/STU3/4-3-security-considerations.html security considerations).
import { endpointOf } from "../context.ts";
import { jwtPayload } from "../http.ts";
import { patientClose, patientOpen, uid } from "../fixtures.ts";
import { type Check, assert, brief, skip } from "../types.ts";
import { SCOPES, SECURITY, SUBSCRIBING, TRANSPORT } from "./spec.ts";
import { eventList, isEvent, tamper } from "./util.ts";

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/i;

export const securityChecks: Check[] = [
  {
    id: "security.tls",
    section: "security",
    level: "SHALL",
    title: "hub.url is https and endpoints are wss (skipped for a loopback development hub)",
    requirement: "All HTTP data SHALL be sent over HTTPS and all WebSocket data over WSS.",
    spec: TRANSPORT,
    async run(ctx) {
      const hub = new URL(ctx.hubUrl);
      const s = await ctx.session();
      const endpoint = new URL(await ctx.subscribe(s, "Patient-open"));
      if (hub.protocol === "http:" && LOOPBACK.test(hub.hostname)) skip(`hub.url ${ctx.hubUrl} is a loopback development hub over http`);
      assert(hub.protocol === "https:", `hub.url uses ${hub.protocol}`);
      assert(endpoint.protocol === "wss:", `hub.channel.endpoint uses ${endpoint.protocol}`);
    },
  },
  {
    id: "security.endpoint-secret",
    section: "security",
    level: "SHALL",
    title: "An endpoint one character off a real one is never confirmed and gets no events",
    requirement: "The WSS URL SHALL be cryptographically random, unique and unguessable: it is the socket's only credential.",
    spec: SUBSCRIBING,
    async run(ctx) {
      const s = await ctx.session();
      const endpoint = await ctx.subscribe(s, "Patient-open");
      const ws = ctx.open(tamper(endpoint));
      await ws.until(() => ws.frames.length > 0 || ws.closed !== undefined, ctx.waitMs);
      const open = patientOpen(s.topic, uid("p"));
      await ctx.publishOk(s, open);
      await ctx.sleep();
      assert(!ws.find((f) => f["hub.mode"] === "subscribe"), "the tampered endpoint was confirmed");
      assert(!ws.find((f) => f.id === open.id), "the tampered endpoint received the event");
    },
  },
  {
    id: "security.subscribe-needs-token",
    section: "security",
    level: "SHOULD",
    title: "A subscribe without a bearer token is refused (401/403)",
    requirement: "With OAuth, subscription requests SHALL carry Authorization: Bearer; the Hub only serves authorized applications.",
    spec: SUBSCRIBING,
    requires: ["credentials"],
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.events": "Patient-open" }, { token: null });
      assert(res.status === 401 || res.status === 403, `a subscribe without a token answered ${res.status} ${brief(res.text)}`);
      return `${res.status}`;
    },
  },
  {
    id: "security.publish-needs-token",
    section: "security",
    level: "SHOULD",
    title: "A publish without a bearer token is refused (401/403) and not broadcast",
    requirement: "Context change requests carry Authorization: Bearer; stolen or missing credentials must not let anyone drive the session.",
    spec: SECURITY,
    requires: ["credentials"],
    async run(ctx) {
      const s = await ctx.session();
      const { ws } = await ctx.subscriber(s, "Patient-open");
      const open = patientOpen(s.topic, uid("p"));
      const res = await ctx.publish(s, open, { token: null });
      assert(res.status === 401 || res.status === 403, `a publish without a token answered ${res.status} ${brief(res.text)}`);
      await ctx.sleep(300);
      assert(!ws.find((f) => f.id === open.id), "the unauthenticated event was broadcast");
    },
  },
  {
    id: "security.invalid-token",
    section: "security",
    level: "SHOULD",
    title: "A malformed bearer token is refused with 401",
    requirement: "The bearer token must be valid and unexpired; otherwise the request is unauthorized (401).",
    spec: SECURITY,
    requires: ["credentials"],
    async run(ctx) {
      const s = await ctx.session();
      const res = await ctx.subscribeRaw(s, { "hub.events": "Patient-open" }, { token: "not.a-valid.token" });
      assert(res.status === 401, `a subscribe with a forged token answered ${res.status} ${brief(res.text)}`);
    },
  },
  {
    id: "security.read-scope-enforced",
    section: "security",
    level: "SHALL",
    title: "A subscriber with only fhircast/Patient-close.read never receives Patient-open",
    requirement: "The Hub SHALL only send FHIR resources the Subscriber is authorized to receive under its granted fhircast/ scopes.",
    spec: SCOPES,
    requires: ["tokenMinting"],
    async run(ctx) {
      const full = await ctx.session();
      const limited = await ctx.sessionFor(full, { scope: "fhircast/Patient-close.read", clientId: "fhircast-conformance-limited" });
      const res = await ctx.subscribeRaw(limited, { "hub.events": "Patient-open,Patient-close" });
      if (res.status >= 400) return `refused with ${res.status}`;
      const ws = await ctx.connect(endpointOf(res, "subscribe with a Patient-close.read token"));
      const c = await ws.first(ctx.waitMs);
      const granted = eventList(c["hub.events"]);
      assert(!granted.includes("patient-open"), `the confirmation grants Patient-open to a token without read scope for it: "${c["hub.events"]}"`);
      const pid = uid("p");
      const open = patientOpen(full.topic, pid);
      const close = patientClose(full.topic, pid);
      await ctx.publishOk(full, open);
      await ctx.publishOk(full, close);
      await ws.waitEvent(close.id, ctx.waitMs, "Patient-close (granted)");
      await ctx.sleep(300);
      assert(!ws.find((f) => isEvent(f, "Patient-open")), "Patient-open reached a subscriber without fhircast/Patient-open.read");
      return `granted "${c["hub.events"]}"`;
    },
  },
  {
    id: "security.write-scope-enforced",
    section: "security",
    level: "SHOULD",
    title: "A publish with only read scopes is refused (403) and not broadcast",
    requirement: "fhircast/<event>.write lets an app publish that event; apps that request context changes SHOULD ask for write scopes.",
    spec: SCOPES,
    requires: ["tokenMinting"],
    async run(ctx) {
      const full = await ctx.session();
      const reader = await ctx.sessionFor(full, { scope: "fhircast/*.read", clientId: "fhircast-conformance-reader" });
      const { ws } = await ctx.subscriber(full, "Patient-open");
      const open = patientOpen(full.topic, uid("p"));
      const res = await ctx.publish(reader, open);
      assert(res.status >= 400 && res.status <= 499, `a publish with only read scopes answered ${res.status} ${brief(res.text)}`);
      await ctx.sleep(300);
      assert(!ws.find((f) => f.id === open.id), "the unauthorized event was broadcast");
      return `${res.status}`;
    },
  },
  {
    id: "security.topic-bound-token",
    section: "security",
    level: "SHOULD",
    title: "A token issued for one topic cannot subscribe to or publish on another",
    requirement: "The topic is a bearer ticket: bind tokens to the topic the authorization server issued them for.",
    spec: SECURITY,
    requires: ["tokenMinting"],
    async run(ctx) {
      const s = await ctx.session();
      const claim = s.token ? jwtPayload(s.token)?.["hub.topic"] : undefined;
      if (claim !== s.topic) skip("the token endpoint's tokens do not name their topic (no hub.topic claim)");
      const other = { ...s, topic: `conformance-${crypto.randomUUID()}` };
      const sub = await ctx.subscribeRaw(other, { "hub.events": "Patient-open" });
      assert(sub.status >= 400 && sub.status <= 499, `subscribing to another topic answered ${sub.status} ${brief(sub.text)}`);
      const pub = await ctx.publish(other, patientOpen(other.topic, uid("p")));
      assert(pub.status >= 400 && pub.status <= 499, `publishing on another topic answered ${pub.status} ${brief(pub.text)}`);
    },
  },
  {
    id: "security.owner-only-unsubscribe",
    section: "security",
    level: "SHOULD",
    title: "Another client cannot unsubscribe a subscription it did not create",
    requirement: "Let only the owner of a subscription unsubscribe or modify it (bind subscriptions to the client).",
    spec: SECURITY,
    requires: ["tokenMinting"],
    async run(ctx) {
      const owner = await ctx.session({ clientId: "fhircast-conformance-owner" });
      const intruder = await ctx.sessionFor(owner, { clientId: "fhircast-conformance-intruder" });
      const { endpoint, ws } = await ctx.subscriber(owner, "Patient-open");
      const res = await ctx.unsubscribe(intruder, endpoint);
      assert(res.status >= 400 && res.status <= 499, `another client's unsubscribe answered ${res.status} ${brief(res.text)}`);
      const open = patientOpen(owner.topic, uid("p"));
      await ctx.publishOk(owner, open);
      await ws.waitEvent(open.id, ctx.waitMs, "the owner's subscription still delivering");
    },
  },
];
