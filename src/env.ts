// The environment the Worker receives: the settings (named by the table in src/settings.ts, with the
// Analytics Engine binding: `SettingsEnv` in src/config.ts) and the bindings. The one declaration of
// it; the tests' environment (test/env.d.ts) extends it. Modules below the Worker layer take only
// the part they read (`SettingsEnv`, or the issuer's binding in src/auth/dev-issuer.ts), so that no
// module imports back the classes this type names (test/e2e/source.e2e.test.ts: no import cycle).
import type { DevIssuer } from "./auth/dev-issuer";
import type { SettingsEnv } from "./config";
import type { Topic } from "./topic/object";

export interface Env extends SettingsEnv {
  TOPIC: DurableObjectNamespace<Topic>;
  ISSUER: DurableObjectNamespace<DevIssuer>;
  /** Workers rate limiting binding (optional): per-client limits on subscribe and publish. */
  RATE_LIMITER?: RateLimit;
}
