// Error bodies. Subscribe/unsubscribe refusals are plain text for developers (fhircast.hl7.org/STU3/2-4-Subscribing.html); every
// other JSON API answers with a FHIR OperationOutcome (docs/decisions.md). The responses carrying
// them are built in src/http/responses.ts.
import type { OperationOutcome } from "../fhircast/wire";

export function operationOutcome(code: string, diagnostics: string, severity: "error" | "warning" = "error"): OperationOutcome {
  return { resourceType: "OperationOutcome", issue: [{ severity, code, diagnostics }] };
}
