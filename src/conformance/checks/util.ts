// Small helpers shared by the checks.
import { isObject } from "../http.ts";
import { assert, brief } from "../types.ts";

/** JSON with sorted keys, for order-insensitive deep comparison. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "undefined";
}

export const deepEqual = (a: unknown, b: unknown): boolean => canonical(a) === canonical(b);

export const sameName = (a: unknown, b: string): boolean => typeof a === "string" && a.toLowerCase() === b.toLowerCase();

/** Whether a frame is the event notification `name` (case-insensitive). */
export const isEvent = (f: Record<string, any>, name: string): boolean => isObject(f.event) && sameName(f.event["hub.event"], name);

/** Event names of a comma-separated hub.events value, lower-cased and trimmed. */
export function eventList(v: unknown): string[] {
  return typeof v === "string" ? v.split(",").map((e) => e.trim().toLowerCase()).filter(Boolean) : [];
}

/** An ISO 8601 / RFC 3339 date-time that Date can read. */
export function isTimestamp(v: unknown): boolean {
  return typeof v === "string" && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(v) && !Number.isNaN(Date.parse(v));
}

/** The resource of the context entry `key` of a notification. */
export function contextResource(f: Record<string, any>, key: string): Record<string, any> | undefined {
  const ctx = f.event?.context ?? f.context;
  if (!Array.isArray(ctx)) return undefined;
  const e = ctx.find((x: unknown) => isObject(x) && x.key === key);
  return isObject(e?.resource) ? e.resource : undefined;
}

/** The endpoint with the last character of its path changed: a well-formed endpoint nobody was given. */
export function tamper(endpoint: string): string {
  const u = new URL(endpoint);
  const path = u.pathname;
  const last = path.slice(-1);
  const replacement = last === "0" ? "1" : last === "a" ? "b" : /[0-9a-f]/.test(last) ? "0" : "a";
  u.pathname = path.slice(0, -1) + replacement;
  return u.toString();
}

export interface SyncErrorInfo {
  issue: Record<string, any>;
  codings: Record<string, any>[];
  eventId?: string;
  eventName?: string;
  subscriberName?: string;
}

/** Reads a SyncError notification's OperationOutcome (accepts the /subscriber system of the 3-2-1 example). */
export function syncErrorInfo(f: Record<string, any>): SyncErrorInfo | undefined {
  const oo = contextResource(f, "operationoutcome");
  const issue = Array.isArray(oo?.issue) ? oo.issue.find((i: unknown) => isObject(i) && i.code === "processing") ?? oo.issue[0] : undefined;
  if (!isObject(issue)) return undefined;
  const codings: Record<string, any>[] = Array.isArray(issue.details?.coding) ? issue.details.coding.filter(isObject) : [];
  const code = (suffix: string) => codings.find((c) => typeof c.system === "string" && c.system.endsWith(`/syncerror/${suffix}`))?.code;
  return { issue, codings, eventId: code("eventid"), eventName: code("eventname"), subscriberName: code("subscribername") ?? code("subscriber") };
}

/** Asserts a 4xx or 5xx answer. */
export function assertRefused(status: number, text: string, what: string): void {
  assert(status >= 400 && status <= 599, `${what}: expected a 4xx/5xx refusal, got ${status} ${brief(text)}`);
}

export const is2xx = (status: number): boolean => status >= 200 && status <= 299;
