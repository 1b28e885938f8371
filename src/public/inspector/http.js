// @ts-check
// The page's HTTP requests to the hub, and the hub's explanation of a refusal.
/** @import { OperationOutcome } from "../../fhircast/wire" */

/**
 * A response read whole. `body` is the parsed JSON (when it is JSON): the caller names the shape
 * it expects of the hub's answer.
 * @typedef {{ status: number, statusText: string, text: string, body: unknown, headers: Headers }} Answer
 */

/**
 * fetch with a timeout; returns status, text and parsed JSON (when it is JSON).
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {Promise<Answer>}
 */
export async function request(url, init = {}, timeoutMs = 15_000) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, statusText: res.statusText, text, body, headers: res.headers };
}

/**
 * The hub's explanation of a refusal: OperationOutcome diagnostics, OAuth error, or the text.
 * @param {Answer} r
 */
export function explain(r) {
  const b = /** @type {Partial<OperationOutcome> & { error?: string, error_description?: string } | undefined} */ (r.body);
  if (b?.resourceType === "OperationOutcome") return b.issue?.map((i) => i.diagnostics).join("; ");
  if (b?.error) return `${b.error}${b.error_description ? `: ${b.error_description}` : ""}`;
  return r.text.slice(0, 500);
}
