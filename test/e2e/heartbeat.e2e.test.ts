// The optional legacy heartbeat (issue 4; requirements §3.5): off by default (STU3 removed it), sent
// every HEARTBEAT_SECONDS to every socket when set, for clients built against the STU3 ballots.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HubServer, removeDir, subscribe, tempStateDir, uniqueTopic, WsClient } from "../helpers/server";

let server: HubServer;
let state: string;

beforeAll(async () => {
  state = await tempStateDir("fhircast-heartbeat");
  server = await HubServer.start({ persistTo: state, vars: { AUTH_MODE: "open", HEARTBEAT_SECONDS: "1", LOG_LEVEL: "warn" } });
});

afterAll(async () => {
  await server?.stop();
  await removeDir(state);
});

describe("HEARTBEAT_SECONDS=1", () => {
  it("sends the ballot-era heartbeat event with its period to a subscriber, repeatedly, without being subscribed to it", async () => {
    const topic = uniqueTopic("heartbeat");
    const client = await WsClient.connect(await subscribe(server.hubUrl, topic, "Patient-open"));
    const frames = await client.waitFrames(3, 10_000); // confirmation, then two heartbeats
    expect(frames[0]["hub.mode"]).toBe("subscribe");
    for (const hb of frames.slice(1)) {
      expect(hb.event["hub.event"]).toBe("heartbeat");
      expect(hb.event["hub.topic"]).toBe(topic);
      expect(hb.event.context).toEqual([{ key: "period", decimal: "1" }]);
      expect(typeof hb.id).toBe("string");
    }
    expect(frames[1].id).not.toBe(frames[2].id);
    client.close(1000);
  });
});
