// GET /ws/{id}/{secret}: a subscriber's WebSocket endpoint, forwarded to the topic object the id names,
// or refused here when it names none.
import type { IRequest } from "itty-router";
import { parseEndpoint } from "../endpoint";
import type { Env } from "../env";
import { log } from "../log";
import { refusedUpgrade } from "../topic/sockets";
import { upgradeRequired } from "./responses";

/** The WebSocket endpoint: forwarded to the topic object named in the URL, or denied here. */
export async function connect(request: IRequest, env: Env): Promise<Response> {
  const notUpgrade = upgradeRequired(request);
  if (notUpgrade) return notUpgrade;
  const ep = parseEndpoint(new URL(request.url).pathname);
  let id: DurableObjectId | undefined;
  try {
    id = ep ? env.TOPIC.idFromString(ep.doId) : undefined;
  } catch {
    id = undefined; // not an id of this namespace
  }
  if (!id) return denyHere("unknown or expired endpoint");
  return env.TOPIC.get(id).fetch(request);
}

/** Denial for an endpoint that names no topic object: no topic is known, so hub.topic is empty. */
function denyHere(reason: string): Response {
  log("connect.denied", { reason });
  return refusedUpgrade({ "hub.mode": "denied", "hub.topic": "", "hub.events": "", "hub.reason": reason });
}
