// Structured JSON logs: one line per event, never tokens, topics, endpoint secrets or patient data.
// Callers pass only counts, ids the hub made up (subscription ids) and event names.

export function log(msg: string, fields: Record<string, string | number | boolean | undefined>): void {
  console.log(JSON.stringify({ msg, ...fields }));
}
