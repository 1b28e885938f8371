// Error responses. Subscribe/unsubscribe refusals are plain text for developers (§2.3, §2.7);
// every other JSON API answers with a FHIR OperationOutcome (docs/decisions.md).
import type { OperationOutcome } from "./wire";

export function operationOutcome(code: string, diagnostics: string, severity: "error" | "warning" = "error"): OperationOutcome {
  return { resourceType: "OperationOutcome", issue: [{ severity, code, diagnostics }] };
}

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
