// Parsing of what the hub sends on the WebSocket (fhircast.hl7.org/STU3/2-4-Subscribing.html, fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): subscription
// confirmation, denial, and event notifications, into typed values. Never throws.
import { type Confirmation, type Denial, isObject, type Notification } from "../fhircast/wire";

export type Frame =
  | { kind: "confirmation"; confirmation: Confirmation }
  | { kind: "denial"; denial: Denial }
  | { kind: "event"; notification: Notification }
  /** The hub's keep-alive answer to a "ping" text frame. */
  | { kind: "pong" }
  | { kind: "unknown"; raw: string; problem: string };

/** A frame's text: strings as they are, binary frames decoded as UTF-8. */
export function frameText(data: unknown): string | undefined {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(new Uint8Array(data));
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength));
  return undefined;
}

export function parseFrame(data: unknown): Frame {
  const raw = frameText(data);
  if (raw === undefined) return { kind: "unknown", raw: "", problem: "not a text frame" };
  if (raw === "pong") return { kind: "pong" };
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    return { kind: "unknown", raw, problem: "not JSON" };
  }
  if (!isObject(v)) return { kind: "unknown", raw, problem: "not a JSON object" };
  const mode = v["hub.mode"];
  if (mode === "subscribe") {
    const lease = typeof v["hub.lease_seconds"] === "string" ? Number(v["hub.lease_seconds"]) : v["hub.lease_seconds"];
    if (typeof v["hub.topic"] !== "string" || typeof v["hub.events"] !== "string" || typeof lease !== "number" || !Number.isFinite(lease)) {
      return { kind: "unknown", raw, problem: "confirmation without hub.topic, hub.events or hub.lease_seconds" };
    }
    return {
      kind: "confirmation",
      confirmation: { "hub.mode": "subscribe", "hub.topic": v["hub.topic"], "hub.events": v["hub.events"], "hub.lease_seconds": lease },
    };
  }
  if (mode === "denied") {
    const denial: Denial = {
      "hub.mode": "denied",
      "hub.topic": typeof v["hub.topic"] === "string" ? v["hub.topic"] : "",
      "hub.events": typeof v["hub.events"] === "string" ? v["hub.events"] : "",
    };
    if (typeof v["hub.reason"] === "string") denial["hub.reason"] = v["hub.reason"];
    return { kind: "denial", denial };
  }
  const event = v.event;
  if (typeof v.id === "string" && isObject(event) && typeof event["hub.event"] === "string" && Array.isArray(event.context)) {
    return { kind: "event", notification: v as unknown as Notification };
  }
  return { kind: "unknown", raw, problem: "neither a confirmation, a denial nor an event notification" };
}

/** The granted events of a confirmation, as a list. */
export function grantedEvents(c: Confirmation): string[] {
  return c["hub.events"].split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}
