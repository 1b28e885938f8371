// The subscriber client (issue 7) running inside the Workers runtime, as a Worker-based application
// would use it. Here the hub is reached through the test runtime's own Worker (SELF) instead of the
// network, so the client gets that fetch and a socket factory built on the Workers upgrade-by-fetch.
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FhircastClient } from "../../src/client";
import type { SocketLike } from "../../src/client/socket";
import { mintToken, uniqueTopic } from "../helpers/hub";

const selfFetch = (input: string, init?: RequestInit) => exports.default.fetch(new Request(input, init));

/** A WebSocket opened the Workers way (fetch with Upgrade, then accept), shaped like a browser's. */
function workersSocket(url: string): SocketLike {
  const listeners = new Map<string, ((e: unknown) => void)[]>();
  const emit = (type: string, e: unknown) => listeners.get(type)?.forEach((l) => l(e));
  let ws: WebSocket | undefined;
  let readyState = 0;
  void selfFetch(url.replace(/^ws/, "http"), { headers: { Upgrade: "websocket" } }).then((res) => {
    ws = res.webSocket!;
    ws.addEventListener("message", (e) => emit("message", { data: e.data }));
    ws.addEventListener("close", (e) => {
      readyState = 3;
      emit("close", { code: e.code, reason: e.reason });
    });
    ws.accept();
    readyState = 1;
    emit("open", {});
  });
  return {
    get readyState() {
      return readyState;
    },
    send: (data) => ws!.send(data),
    close: (code, reason) => ws?.close(code, reason),
    addEventListener: (type, listener) => listeners.set(type, [...(listeners.get(type) ?? []), listener as (e: unknown) => void]),
  };
}

describe("FhircastClient in the Workers runtime", () => {
  it("connects, receives and acknowledges an event another client publishes, reads the context, closes", async () => {
    const topic = uniqueTopic("client-workers");
    const token = await mintToken({ client_id: "worker-app" });
    const options = { hubUrl: "http://hub.test/api/hub", topic, token, fetch: selfFetch, webSocket: workersSocket, reconnect: false as const };
    const viewer = new FhircastClient({ ...options, events: ["Patient-open"], subscriberName: "Worker Viewer" });
    const confirmation = await viewer.connect();
    expect(confirmation["hub.events"]).toBe("Patient-open");
    const publisher = new FhircastClient({ ...options, events: ["Patient-close"] });
    await publisher.connect();
    const received = viewer.next("event", undefined, 5000);
    await publisher.publish("Patient-open", { patient: { resourceType: "Patient", id: "w1", identifier: [{ value: "1" }] } });
    const event = (await received) as { name: string; id: string };
    expect(event.name).toBe("Patient-open");
    const context = await viewer.getContext();
    expect(context["context.type"]).toBe("Patient");
    await viewer.close();
    await publisher.close();
  });
});

describe("FhircastClient where the runtime has no global WebSocket (Node 20)", () => {
  const options = { hubUrl: "https://hub.example/api/hub", topic: "t", events: ["Patient-open"], token: "x" };

  it("refuses to be made without the webSocket option, naming it; with the option it is made", () => {
    // As on Node 20: no WebSocket global (workerd defines it on the global scope's prototype, so an
    // own property set to undefined hides it, and deleting that property brings it back).
    Object.defineProperty(globalThis, "WebSocket", { value: undefined, configurable: true, writable: true });
    try {
      expect(() => new FhircastClient(options)).toThrow(/no global WebSocket.*pass the webSocket option/);
      const client = new FhircastClient({ ...options, webSocket: workersSocket });
      expect(client.state).toBe("idle");
    } finally {
      delete (globalThis as { WebSocket?: unknown }).WebSocket;
    }
    expect(new FhircastClient(options).state).toBe("idle");
  });
});
