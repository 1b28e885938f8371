// Operational counters, kept per isolate: events accepted, deliveries, acknowledgements, SyncErrors,
// connected subscribers, delivery latency. A self-hosted workerd runs the Worker and every topic
// object in one isolate, so these are the whole hub's numbers there (served at /metrics in
// Prometheus text format); on the edge each isolate also writes data points to Workers Analytics
// Engine when the ANALYTICS binding exists. No labels carry topics, tokens or patient data.
//
// Analytics Engine data points (one per counted change; docs/operations.md "Observability"):
//   index1 = metric name, blob1 = metric name, blob2 = labels (`k="v",…`, may be empty),
//   double1 = the increment (counters: ≥1; fhircast_subscribers: +1 or -1; latency: the ms value).

type Labels = Record<string, string>;

let analytics: AnalyticsEngineDataset | undefined;
/** Set from the ANALYTICS binding (config.ts); undefined turns data points off. */
export function setAnalytics(dataset: AnalyticsEngineDataset | undefined): void {
  analytics = dataset;
}

function dataPoint(name: string, labels: string, value: number): void {
  if (!analytics) return;
  try {
    analytics.writeDataPoint({ indexes: [name], blobs: [name, labels], doubles: [value] });
  } catch {
    // Metrics never fail a request.
  }
}

const counters = new Map<string, Map<string, number>>();
let connected = 0;
/**
 * Publish latency as the Worker sees it (request received → the topic object has applied the event
 * and handed every frame to the runtime), in ms. Clocks do not advance inside one synchronous run in
 * workerd, so it is measured across the RPC call, where they do.
 */
const LATENCY_BUCKETS = [0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000];
const latency = { buckets: LATENCY_BUCKETS.map(() => 0), sum: 0, count: 0 };

const HELP: Record<string, string> = {
  fhircast_events_accepted_total: "Events accepted (published or hub-generated), by event name.",
  fhircast_events_rejected_total: "Publishes refused by a topic object, by HTTP status.",
  fhircast_deliveries_total: "Event frames sent to subscribers.",
  fhircast_acks_total: "Acknowledgements received, by outcome.",
  fhircast_syncerrors_total: "Hub-generated SyncErrors, by reason.",
  fhircast_subscriptions_total: "Subscription changes, by action.",
};

const UNSAFE = /["\\\n]/g;
/** `k="v",…`; built by hand because it runs for every acknowledgement. */
function key(labels: Labels): string {
  let out = "";
  for (const name in labels) {
    const v = labels[name]!;
    out += `${out === "" ? "" : ","}${name}="${v.replace(UNSAFE, "_")}"`;
  }
  return out;
}

export function count(name: keyof typeof HELP, labels: Labels = {}, by = 1): void {
  let m = counters.get(name);
  if (!m) counters.set(name, (m = new Map()));
  const k = key(labels);
  m.set(k, (m.get(k) ?? 0) + by);
  dataPoint(name, k, by);
}

export function socketOpened(): void {
  connected++;
  dataPoint("fhircast_subscribers", "", 1);
}
export function socketClosed(): void {
  connected = Math.max(0, connected - 1);
  dataPoint("fhircast_subscribers", "", -1);
}

export function observePublish(ms: number): void {
  latency.sum += ms;
  latency.count++;
  for (const [i, b] of LATENCY_BUCKETS.entries()) if (ms <= b) latency.buckets[i]!++;
  dataPoint("fhircast_publish_latency_ms", "", ms);
}

/** Everything, in the Prometheus text exposition format. */
export function prometheusText(): string {
  const lines: string[] = [];
  for (const [name, help] of Object.entries(HELP)) {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
    for (const [labels, v] of counters.get(name) ?? []) lines.push(`${name}${labels ? `{${labels}}` : ""} ${v}`);
  }
  lines.push("# HELP fhircast_subscribers Connected subscriber sockets.", "# TYPE fhircast_subscribers gauge", `fhircast_subscribers ${connected}`);
  lines.push("# HELP fhircast_publish_latency_ms Publish received to every frame sent, in ms.", "# TYPE fhircast_publish_latency_ms histogram");
  for (const [i, b] of LATENCY_BUCKETS.entries()) lines.push(`fhircast_publish_latency_ms_bucket{le="${b}"} ${latency.buckets[i]}`);
  lines.push(`fhircast_publish_latency_ms_bucket{le="+Inf"} ${latency.count}`);
  lines.push(`fhircast_publish_latency_ms_sum ${latency.sum}`, `fhircast_publish_latency_ms_count ${latency.count}`);
  return `${lines.join("\n")}\n`;
}
