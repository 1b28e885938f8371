// HTTP helpers of the conformance kit: every request has a timeout, every response is read whole.
// Uses only the global fetch (Node >= 20, browsers, Workers).
import { rootCause, TransportError } from "./outcome.ts";

export interface HttpResult {
  status: number;
  /** Content-Type without parameters, lower-cased ("" when absent). */
  contentType: string;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  token?: string;
  timeoutMs: number;
}

export async function request(url: string, opts: HttpOptions): Promise<HttpResult> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const what = `${opts.method ?? "GET"} ${url}`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: opts.method ?? "GET",
      headers,
      body: opts.body,
      signal: AbortSignal.timeout(opts.timeoutMs),
      redirect: "manual",
    });
    // The timeout covers the body too; a hub dying mid-body rejects here ("terminated").
    text = await res.text();
  } catch (e) {
    throw transportError(what, e, opts.timeoutMs);
  }
  let json: unknown;
  try {
    json = text === "" ? undefined : (JSON.parse(text) as unknown);
  } catch {
    json = undefined;
  }
  const contentType = (res.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  return { status: res.status, contentType, headers: res.headers, text, json };
}

/** What a failed fetch says, with its cause kept: "POST …: fetch failed (connect ECONNREFUSED …)". */
export function transportError(what: string, e: unknown, timeoutMs: number): TransportError {
  const err = e as Error;
  if (err?.name === "TimeoutError") return new TransportError(`${what}: no answer within ${timeoutMs} ms`, "TIMEOUT");
  const cause = rootCause(e);
  const detail = cause.message && cause.message !== err?.message ? ` (${cause.message})` : "";
  return new TransportError(`${what}: ${err?.message ?? String(e)}${detail}`, cause.code);
}

export const FORM = "application/x-www-form-urlencoded";

export function form(params: Record<string, string | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) p.set(k, v);
  return p.toString();
}

export const isObject = (v: unknown): v is Record<string, any> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Decodes a JWT's payload without verifying it (only to read `exp`); undefined for opaque tokens. */
export function jwtPayload(token: string): Record<string, unknown> | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
    const parsed = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)))) as unknown;
    return isObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}
