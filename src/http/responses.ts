// Response builders: the three bodies the hub answers with (JSON, a FHIR OperationOutcome, plain text)
// and the one answer to a request that should have been a WebSocket upgrade. Which endpoint answers
// errors in which format: docs/operations.md "Error responses". Nothing here imports the Worker
// layer: the Topic object's socket endpoints use these too.
import { operationOutcome } from "../protocol/errors";

export function outcomeResponse(status: number, code: string, diagnostics: string, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(operationOutcome(code, diagnostics)), {
    status,
    headers: { "Content-Type": "application/fhir+json; charset=utf-8", ...headers },
  });
}

export function textResponse(status: number, text: string, headers: HeadersInit = {}): Response {
  return new Response(text, { status, headers: { "Content-Type": "text/plain; charset=utf-8", ...headers } });
}

export function jsonResponse(status: number, body: unknown, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}

/**
 * The guard of every WebSocket endpoint (a subscriber's `/ws/…`, the inspector's live socket, and the
 * topic object behind both): 426 for a request that is not an upgrade, undefined for one that is.
 */
export function upgradeRequired(request: Request): Response | undefined {
  if (request.headers.get("Upgrade")?.toLowerCase() === "websocket") return undefined;
  return textResponse(426, "this endpoint takes a WebSocket upgrade", { Upgrade: "websocket" });
}
