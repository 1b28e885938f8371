// The hub's self-description: `.well-known/fhircast-configuration` (fhircast.hl7.org/STU3/2-4-Subscribing.html,
// https://fhircast.hl7.org/STU3/2-1-SessionDiscovery.html) and `GET /`.
import type { IRequest } from "itty-router";
import { hubSettings } from "../config";
import { HUB_PATH } from "../endpoint";
import type { Env } from "../env";
import type { WellKnown } from "../fhircast/wire";
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

/**
 * `GET /health`: 200 while the hub does its work; 503 naming the problem while its authentication
 * settings make it refuse every request (AUTH_MODE refused where HUB_ENV forbids it, smart mode
 * missing a setting), so that a load balancer or a monitor sees such a hub as down, not healthy.
 */
export function health(_request: IRequest, env: Env): Response {
  const { misconfigured } = hubSettings(env).config.auth;
  return misconfigured ? jsonResponse(503, { status: "refused", problem: misconfigured }) : jsonResponse(200, { status: "ok" });
}

/** `GET /`: where hub.url and the discovery document are. */
export function hubIndex(request: IRequest, env: Env): Response {
  return jsonResponse(200, {
    name: "FHIRcast Hub",
    "hub.url": `${hubOrigin(request, env)}${HUB_PATH}`,
    wellKnown: `${hubOrigin(request, env)}${HUB_PATH}/.well-known/fhircast-configuration`,
  });
}
