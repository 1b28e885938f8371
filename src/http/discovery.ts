// The hub's self-description: `.well-known/fhircast-configuration` (fhircast.hl7.org/STU3/2-4-Subscribing.html,
// https://fhircast.hl7.org/STU3/2-1-SessionDiscovery.html) and `GET /`.
import type { IRequest } from "itty-router";
import { hubSettings } from "../config";
import { HUB_PATH } from "../endpoint";
import type { Env } from "../env";
import type { WellKnown } from "../protocol/wire";
import { hubOrigin } from "./access";
import { jsonResponse } from "./responses";

/** `.well-known/fhircast-configuration`. */
export function wellKnown(_request: IRequest, env: Env): Response {
  const body: WellKnown = {
    eventsSupported: hubSettings(env).catalog.names(),
    websocketSupport: true,
    fhircastVersion: "3.0.0",
    fhirVersion: "R4",
    getCurrentSupport: true,
    capabilities: { supportsGetCurrentContext: true, supportsNonCurrentContextUpdates: true },
  };
  return jsonResponse(200, body);
}

/** `GET /`: where hub.url and the discovery document are. */
export function hubIndex(request: IRequest, env: Env): Response {
  return jsonResponse(200, {
    name: "FHIRcast Hub",
    "hub.url": `${hubOrigin(request, env)}${HUB_PATH}`,
    wellKnown: `${hubOrigin(request, env)}${HUB_PATH}/.well-known/fhircast-configuration`,
  });
}
