// Structured JSON logs: one line per event, never tokens, topics, endpoint secrets or patient data.
// Callers pass only counts, ids the hub made up (subscription ids) and event names.

export type LogLevel = "info" | "warn" | "silent";
let level: LogLevel = "info";

/** Set from the LOG_LEVEL setting ("info", "warn" or "silent"). */
export function setLogLevel(value: string | undefined): void {
  level = value === "silent" || value === "warn" ? value : "info";
}

export function log(msg: string, fields: Record<string, string | number | boolean | undefined>, severity: "info" | "warn" = "info"): void {
  if (level === "silent" || (level === "warn" && severity === "info")) return;
  (severity === "warn" ? console.warn : console.log)(JSON.stringify({ level: severity, msg, ...fields }));
}
