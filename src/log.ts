// Structured JSON logs: one line per event, never tokens, topics, endpoint secrets or patient data.
// Callers pass only counts, ids the hub made up (subscription ids) and event names.

export type LogLevel = "info" | "warn" | "silent";
let level: LogLevel = "info";

/** Set from the LOG_LEVEL setting ("info", "warn" or "silent"). */
export function setLogLevel(value: string | undefined): void {
  level = value === "silent" || value === "warn" ? value : "info";
}

/**
 * A line's severity. `error`: an unexpected exception, a setting that does not parse, or a start in a
 * mode that refuses work or puts data at risk; written unless LOG_LEVEL=silent.
 */
export type Severity = "info" | "warn" | "error";

/** Whether a line of this severity would be written (lets callers skip work for lines nobody reads). */
export function logs(severity: Severity = "info"): boolean {
  return level !== "silent" && !(level === "warn" && severity === "info");
}

export function log(msg: string, fields: Record<string, string | number | boolean | undefined>, severity: Severity = "info"): void {
  if (!logs(severity)) return;
  (severity === "error" ? console.error : severity === "warn" ? console.warn : console.log)(JSON.stringify({ level: severity, msg, ...fields }));
}

/**
 * What logs carry instead of a topic: the first 12 hex digits of the topic's SHA-256 (48 bits), enough
 * to follow one session through the logs, never the topic itself.
 */
export async function topicHash(topic: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(topic)));
  return Array.from(digest.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join("");
}
