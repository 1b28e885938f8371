// FHIRcast scopes (fhircast.hl7.org/STU3/2-2-FhircastScopes.html, scopes.ebnf): `fhircast/<Event|*>.<read|write|*>`.
// Event names match case-insensitively. Other scopes in the token (openid, patient/…) are ignored.
// Pure module.

export interface Grant {
  /** Lower-cased event name, or "*" for every event. */
  event: string;
  read: boolean;
  write: boolean;
}

const SCOPE = /^fhircast\/([^.\s]+(?:\.[^.\s]+)*)\.(read|write|\*)$/i;

/** Parses a space-separated scope string into FHIRcast grants. */
export function parseScopes(scope: string | undefined): Grant[] {
  const grants: Grant[] = [];
  for (const s of (scope ?? "").split(/\s+/)) {
    const m = SCOPE.exec(s);
    if (!m) continue;
    const access = m[2]!.toLowerCase();
    grants.push({ event: m[1]!.toLowerCase(), read: access !== "write", write: access !== "read" });
  }
  return grants;
}

/** Whether the grants allow `access` to `eventName`. */
export function allows(grants: readonly Grant[], eventName: string, access: "read" | "write"): boolean {
  const e = eventName.toLowerCase();
  return grants.some((g) => (g.event === "*" || g.event === e) && g[access]);
}

/** A scope string is well formed when every fhircast/ scope in it parses (used by the dev issuer). */
export function invalidFhircastScopes(scope: string): string[] {
  return scope.split(/\s+/).filter((s) => s.toLowerCase().startsWith("fhircast/") && !SCOPE.test(s));
}
