// Event catalog (fhircast.hl7.org/STU3/2-3-Events.html): proprietary reverse-domain events are accepted when configured
// (PROPRIETARY_EVENTS), advertised in eventsSupported, subscribable and distributed. The Worker is
// driven through its real fetch handler with that one setting changed; the topic object is the real one.
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/worker";
import {
  connect, event, expectOutcome, expectText, hubFetch, mintToken, ORIGIN, patientOpen, publishInit, subscribeForm, uniqueTopic,
} from "../helpers/hub";

const NAME = "org.example.patient_transmogrify";
const configured = { ...env, PROPRIETARY_EVENTS: `${NAME}, com.example.other` };
let token: Promise<string> | undefined;

/** A request with the test token, handled by the real Worker configured with two proprietary events. */
async function fetchConfigured(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${await (token ??= mintToken({}, { expiresIn: 7 * 86400 }))}`);
  return worker.fetch(new Request(`${ORIGIN}${path}`, { ...init, headers }), configured, createExecutionContext());
}

describe("proprietary events (PROPRIETARY_EVENTS)", () => {
  it("are listed in eventsSupported, in the configured spelling, when configured", async () => {
    const res = await fetchConfigured("/api/hub/.well-known/fhircast-configuration");
    const body = (await res.json()) as { eventsSupported: string[] };
    expect(body.eventsSupported.slice(-2)).toEqual([NAME, "com.example.other"]);
    expect(body.eventsSupported).toContain("Patient-open");
  });

  it("can be subscribed to (case-insensitively) and are distributed to their subscribers with any context", async () => {
    const topic = uniqueTopic("prop");
    const res = await fetchConfigured("/api/hub", subscribeForm(topic, `${NAME.toUpperCase()},Patient-open`));
    expect(res.status).toBe(202);
    const client = await connect(((await res.json()) as Record<string, string>)["hub.channel.endpoint"]!);
    expect(await client.frame(0)).toMatchObject({ "hub.events": `${NAME},Patient-open` });
    const ev = event(topic, NAME, [{ key: "anything", string: "free-form" }]);
    expect((await fetchConfigured("/api/hub", publishInit(ev))).status).toBe(202);
    expect(await client.frame(1)).toEqual(ev);
    // Standard events still go through the catalog on the configured hub.
    const open = patientOpen(topic);
    expect((await fetchConfigured("/api/hub", publishInit(open))).status).toBe(202);
    expect((await client.frame(2)).id).toBe(open.id);
    client.close();
  });

  it("are refused (400 naming the event) by a hub that has not configured them", async () => {
    const topic = uniqueTopic("prop");
    await expectText(await hubFetch("/api/hub", subscribeForm(topic, NAME)), 400, NAME);
    await expectOutcome(await hubFetch("/api/hub", publishInit(event(topic, NAME, [{ key: "anything", string: "x" }]))), 400, NAME);
  });
});
