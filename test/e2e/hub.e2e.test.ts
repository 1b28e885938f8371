// End to end: the real local server (wrangler dev, as `npm start` runs it) on a free loopback port,
// driven over HTTP and a plain WebSocket client as an application would: discovery, subscribe with a
// form, confirmation, publish, delivery, current context; then restarts (SIGTERM and SIGKILL) on the
// same persist directory prove state survives and a re-subscriber gets the replay (fhircast.hl7.org/STU3/2-4-Subscribing.html, fhircast.hl7.org/STU3/2-9-GetCurrentContext.html).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  currentContext,
  devToken,
  event,
  HubServer,
  http,
  patient,
  publish,
  removeDir,
  subscribe,
  tempStateDir,
  uniqueTopic,
  WsClient,
} from "../helpers/server";

let dir: string;
let server: HubServer | undefined;
const clients: WsClient[] = [];

function hub(): HubServer {
  if (!server) throw new Error("server is not running");
  return server;
}

async function connect(endpoint: string): Promise<WsClient> {
  const c = await WsClient.connect(endpoint);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  dir = await tempStateDir();
  server = await HubServer.start({ persistTo: dir });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await server?.stop();
  server = undefined;
  if (dir) await removeDir(dir);
});

describe("a real local server, driven as an application would", () => {
  it("serves the well-known configuration at hub.url and at the origin (fhircast.hl7.org/STU3/2-7-Conformance.html)", async () => {
    for (const url of [`${hub().hubUrl}/.well-known/fhircast-configuration`, `${hub().origin}/.well-known/fhircast-configuration`]) {
      const res = await http(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get("content-type") ?? "").toMatch(/json/);
      const body = (await res.json()) as Record<string, any>;
      expect(body.websocketSupport).toBe(true);
      expect(body.fhircastVersion).toBe("3.0.0");
      expect(body.fhirVersion).toBe("R4");
      expect(body.getCurrentSupport).toBe(true);
      expect(body.capabilities).toMatchObject({ supportsGetCurrentContext: true });
      expect(body.eventsSupported).toEqual(expect.arrayContaining(["Patient-open", "Patient-close", "DiagnosticReport-update"]));
    }
    const root = (await (await http(`${hub().origin}/`)).json()) as Record<string, string>;
    expect(root["hub.url"]).toBe(hub().hubUrl);
  });

  it("subscribe (form), connect, confirm, publish (JSON), deliver with the same id, get current context", async () => {
    const topic = uniqueTopic("flow");
    // `npm start` runs the development issuer (AUTH_MODE=dev): an app first gets a token for its topic.
    const token = await devToken(hub().origin, topic);
    const auth: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
    // As `curl -d hub.channel.type=websocket -d hub.mode=subscribe ...` sends it.
    const res = await http(hub().hubUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...auth },
      body: `hub.channel.type=websocket&hub.mode=subscribe&hub.topic=${encodeURIComponent(topic)}&hub.events=Patient-open,Patient-close`,
    });
    expect(res.status).toBe(202);
    const endpoint = ((await res.json()) as Record<string, string>)["hub.channel.endpoint"]!;
    expect(endpoint.startsWith(`ws://127.0.0.1:${hub().port}/`)).toBe(true);
    expect(endpoint).not.toContain(topic);

    const ws = await connect(endpoint);
    const [confirmation] = await ws.waitFrames(1);
    expect(confirmation).toEqual({
      "hub.mode": "subscribe",
      "hub.topic": topic,
      "hub.events": "Patient-open,Patient-close",
      "hub.lease_seconds": expect.any(Number),
    });

    const open = event(topic, "Patient-open", [{ key: "patient", resource: patient("e2e-p1") }]);
    const pub = await publish(hub().hubUrl, open, { token });
    expect(pub.status, await pub.clone().text()).toBe(202);

    const delivered = (await ws.waitFrames(2))[1];
    expect(delivered.id).toBe(open.id);
    expect(delivered.timestamp).toBe(open.timestamp);
    expect(delivered.event["hub.topic"]).toBe(topic);
    expect(delivered.event["hub.event"]).toBe("Patient-open");
    expect(delivered.event.context).toEqual(open.event.context);
    ws.ack(open.id);

    const current = await currentContext(hub().hubUrl, topic, { token });
    expect(current["context.type"]).toBe("Patient");
    expect(typeof current["context.versionId"]).toBe("string");
    expect(current["context.versionId"]).toBe(delivered.event["context.versionId"]);
    expect(current.context).toEqual(expect.arrayContaining([{ key: "patient", resource: patient("e2e-p1") }]));

    // A close empties the current context and reaches the subscriber too.
    const close = event(topic, "Patient-close", [{ key: "patient", resource: patient("e2e-p1") }]);
    expect((await publish(hub().hubUrl, close, { token })).status).toBe(202);
    expect((await ws.waitFrames(3))[2].id).toBe(close.id);
    expect(await currentContext(hub().hubUrl, topic, { token })).toEqual({ "context.type": "", context: [] });
    ws.close();
  });

  for (const how of ["stop", "kill"] as const) {
    it(`keeps the current context across a restart after ${how === "stop" ? "SIGTERM" : "SIGKILL"}; a re-subscriber gets the replay`, async () => {
      const topic = uniqueTopic(`restart-${how}`);
      const token = await devToken(hub().origin, topic);
      const endpoint = await subscribe(hub().hubUrl, topic, "Patient-open,Patient-close", { token });
      const ws = await connect(endpoint);
      await ws.waitFrames(1);

      const open = event(topic, "Patient-open", [{ key: "patient", resource: patient(`p-${how}`) }]);
      const pub = await publish(hub().hubUrl, open, { token });
      expect(pub.status, await pub.clone().text()).toBe(202);
      let before: any;
      if (how === "stop") {
        // Let the delivery arrive, read the context, then a graceful stop.
        await ws.waitFrames(2);
        before = await currentContext(hub().hubUrl, topic, { token });
        await hub().stop();
      } else {
        // Crash right after the 202: nothing gets a chance to flush.
        await hub().kill();
      }
      const port = hub().port;
      server = undefined;
      await ws.waitClose(15_000); // the old socket dies with the server

      // Restart as `npm start` would: same port, same state directory.
      server = await HubServer.start({ persistTo: dir, port });

      const after = await currentContext(hub().hubUrl, topic, { token });
      expect(after["context.type"]).toBe("Patient");
      expect(typeof after["context.versionId"]).toBe("string");
      expect(after.context).toEqual(expect.arrayContaining(open.event.context));
      if (before) expect(after).toEqual(before);

      // The same token still works: the development issuer's keys persist with the state.
      const endpoint2 = await subscribe(hub().hubUrl, topic, "Patient-open,Patient-close", { token });
      expect(endpoint2).not.toBe(endpoint);
      const ws2 = await connect(endpoint2);
      const [confirmation, replay] = await ws2.waitFrames(2);
      expect(confirmation).toMatchObject({ "hub.mode": "subscribe", "hub.topic": topic, "hub.events": "Patient-open,Patient-close" });
      expect(replay.id).toBe(open.id);
      expect(replay.timestamp).toBe(open.timestamp);
      expect(replay.event["hub.event"]).toBe("Patient-open");
      expect(replay.event.context).toEqual(open.event.context);
      expect(replay.event["context.versionId"]).toBe(after["context.versionId"]);

      // The old endpoint is gone for good: connecting to it is denied (1008).
      const stale = await connect(endpoint);
      const [denial] = await stale.waitFrames(1);
      expect(denial["hub.mode"]).toBe("denied");
      expect((await stale.waitClose()).code).toBe(1008);

      // And the restarted hub delivers new events to the new socket.
      const close = event(topic, "Patient-close", [{ key: "patient", resource: patient(`p-${how}`) }]);
      expect((await publish(hub().hubUrl, close, { token })).status).toBe(202);
      expect((await ws2.waitFrames(3))[2].id).toBe(close.id);
      ws2.close();
    });
  }
});
