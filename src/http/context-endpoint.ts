// GET {hub.url}/{topic}: the current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html); refusals as OperationOutcomes.
import type { IRequest } from "itty-router";
import { allows } from "../auth/scopes";
import { authenticate } from "../auth/tokens";
import { hubSettings } from "../config";
import type { Env } from "../env";
import { fail } from "../fhircast/wire";
import { checkTopic, errorsAs, topicStub } from "./access";
import { pathTopic } from "./body";
import { note } from "./request-log";
import { jsonResponse } from "./responses";

/** GET {hub.url}/{topic}: current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html), if the token may read the current anchor's open event. */
export const getContext = errorsAs("outcome", async (request: IRequest, env: Env) => {
  const who = await authenticate(request, env, hubSettings(env).config.auth);
  if (!who.ok) return who;
  const decoded = pathTopic(request);
  if (!decoded.ok) return decoded;
  const topic = decoded.value;
  note(request, { topic });
  const denied = checkTopic(who.value, topic);
  if (denied) return denied;
  const { context, eventName } = await topicStub(env, topic).currentContext();
  if (eventName && !allows(who.value.grants, eventName, "read")) {
    return fail(403, "forbidden", `the access token has no read scope for ${eventName}, the current context's event`);
  }
  return jsonResponse(200, context);
});
