// Types for `cloudflare:workers` env and exports inside the test runtime.
declare namespace Cloudflare {
  interface Env {
    TOPIC: DurableObjectNamespace<import("../src/topic").Topic>;
  }
  interface Exports {
    default: Fetcher;
  }
}
