import { describe, expect, it } from "vitest";
import { patientOpen, publish, subscriber, uniqueTopic } from "../helpers/hub";

describe("smoke", () => {
  it("subscribes, connects and receives a published event", async () => {
    const topic = uniqueTopic();
    const { client } = await subscriber(topic, "Patient-open");
    expect(client.frames[0]).toEqual({ "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open", "hub.lease_seconds": 3600 });
    const ev = patientOpen(topic);
    expect((await publish(ev)).status).toBe(202);
    const got = await client.frame(1);
    expect(got.id).toBe(ev.id);
  });
});
