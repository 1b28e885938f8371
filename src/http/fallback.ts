// What the router answers when no handler takes a request: 405 with `Allow` for a path the hub serves
// with other methods, 404 for any other path. Each in the error format of the path it names
// (docs/operations.md "Error responses"): OperationOutcome for the FHIRcast API, an OAuth error for
// the token endpoint, plain text elsewhere.
import type { IRequest } from "itty-router";
import { jsonResponse, outcomeResponse, textResponse } from "./responses";

/** The FHIRcast API's paths, whose refusals are OperationOutcomes. */
function isApiPath(path: string): boolean {
  return path.startsWith("/api/") || path === "/api" || path === "/.well-known/fhircast-configuration";
}

/** A refusal in the format of the path it answers. */
export function refuse(request: Request, status: number, code: string, detail: string, headers: Record<string, string> = {}): Response {
  const path = new URL(request.url).pathname;
  if (isApiPath(path)) return outcomeResponse(status, code, detail, headers);
  if (path === "/auth/token") return jsonResponse(status, { error: "invalid_request", error_description: detail }, headers);
  return textResponse(status, detail, headers);
}

/** A handler for a known path reached with a method it does not take: 405 naming the ones it does. */
export function methodNotAllowed(allow: string) {
  return (request: IRequest): Response =>
    refuse(request, 405, "not-supported", `${request.method} is not allowed here; use ${allow}`, { Allow: `${allow}, OPTIONS` });
}

export function notFound(request: IRequest): Response {
  return refuse(request, 404, "not-found", `no route for ${request.method} ${new URL(request.url).pathname}`);
}
