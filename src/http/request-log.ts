// The request log: one JSON line per request with method, route pattern, status, time, and a topic hash
// (never a topic, a path, a token or an endpoint secret).
import type { IRequest } from "itty-router";
import { log, logs, topicHash } from "../log";

export interface RequestNote {
  started: number;
  topic?: string;
  event?: string;
  mode?: string;
}

export const notes = new WeakMap<Request, RequestNote>();

/** Remembers what the request log line should say about this request (the topic is hashed there). */
export function note(request: Request, fields: Omit<RequestNote, "started">): void {
  const n = notes.get(request);
  if (n) Object.assign(n, fields);
}

export function startTimer(request: IRequest): undefined {
  notes.set(request, { started: Date.now() });
  return undefined;
}

/** `request` log line: route pattern (not the path: it can hold a topic or an endpoint secret), status, ms. */
export async function requestLog(response: Response | undefined, request: IRequest): Promise<undefined> {
  const n = notes.get(request);
  const route = request.route ?? "none";
  if (!n || route === "/health" || route === "/metrics" || request.method === "OPTIONS") return undefined;
  const severity = (response?.status ?? 500) >= 500 ? "warn" : "info";
  if (!logs(severity)) return undefined; // no hashing for a line nobody will read
  log(
    "request",
    {
      method: request.method,
      route,
      status: response?.status ?? 500,
      ms: Date.now() - n.started,
      topic: n.topic === undefined ? undefined : await topicHash(n.topic),
      event: n.event,
      mode: n.mode,
    },
    severity,
  );
  return undefined;
}
