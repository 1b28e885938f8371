// The optional legacy heartbeat (issue 4, issue 21 item 4): off by default (STU3 removed it). With
// HEARTBEAT_SECONDS > 0 the hub offers `heartbeat` as an event (eventsSupported lists it) and sends it
// every HEARTBEAT_SECONDS only to subscriptions that list it in hub.events: STU3 forbids sending a
// subscriber events it did not subscribe to (https://fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publish, removeDir, subscribe, tempStateDir, uniqueTopic, type WorkerdServer, WsClient } from "../helpers/server";
import { startWorkerdHub } from "../helpers/node/workerd-hub.ts";

let server: WorkerdServer;
let state: string;

beforeAll(async () => {
  state = await tempStateDir("fhircast-heartbeat");
  server = await startWorkerdHub({ persistTo: state, vars: { AUTH_MODE: "open", HEARTBEAT_SECONDS: "1", LOG_LEVEL: "warn" } });
});

afterAll(async () => {
  await server?.stop();
  await removeDir(state);
});

describe("HEARTBEAT_SECONDS=1", () => {
  it("eventsSupported lists heartbeat; a subscriber that lists it gets the ballot-era event with its period, repeatedly", async () => {
    const wk = (await (await fetch(`${server.origin}/api/hub/.well-known/fhircast-configuration`)).json()) as { eventsSupported: string[] };
    expect(wk.eventsSupported).toContain("heartbeat");
    const topic = uniqueTopic("heartbeat");
    const client = await WsClient.connect(await subscribe(server.hubUrl, topic, "Patient-open,heartbeat"));
    const frames = await client.waitFrames(3, 10_000); // confirmation, then two heartbeats
    expect(frames[0]["hub.mode"]).toBe("subscribe");
    expect(frames[0]["hub.events"]).toBe("Patient-open,heartbeat");
    for (const hb of frames.slice(1)) {
      expect(hb.event["hub.event"]).toBe("heartbeat");
      expect(hb.event["hub.topic"]).toBe(topic);
      expect(hb.event.context).toEqual([{ key: "period", decimal: "1" }]);
      expect(typeof hb.id).toBe("string");
    }
    expect(frames[1].id).not.toBe(frames[2].id);
    client.close(1000);
  });

  it("a subscriber that did not list heartbeat never gets one, while one on the same topic that did gets them", async () => {
    const topic = uniqueTopic("heartbeat-not-asked");
    const plain = await WsClient.connect(await subscribe(server.hubUrl, topic, "Patient-open"));
    await plain.waitFrames(1);
    const asked = await WsClient.connect(await subscribe(server.hubUrl, topic, "heartbeat"));
    await asked.waitFrames(3, 10_000); // two heartbeat periods passed for both sockets
    expect(plain.frames.map((f) => f["hub.mode"] ?? f.event?.["hub.event"])).toEqual(["subscribe"]);
    plain.close(1000);
    asked.close(1000);
  });

  it("nobody may publish heartbeat: 400 naming it", async () => {
    const topic = uniqueTopic("heartbeat-publish");
    const res = await publish(server.hubUrl, {
      timestamp: new Date().toISOString(),
      id: crypto.randomUUID(),
      event: { "hub.topic": topic, "hub.event": "heartbeat", context: [] },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("heartbeat");
  });
});
