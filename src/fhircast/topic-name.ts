// hub.topic as the hub accepts it, wherever a topic comes in: a subscription's hub.topic, a publish's
// event.hub.topic, the {topic} of `POST|GET {hub.url}/{topic}` and the inspector's URL, and the
// development issuer's hub.topic. One rule, so the same text always names the same topic object.
// Pure module.
import { fail, ok, type Result } from "./wire";

export const MAX_TOPIC_LENGTH = 512;

/**
 * C0 controls (NUL, CR, LF, TAB, …), DEL, C1 controls, and the bidirectional embedding, override and
 * isolate characters (U+202A–U+202E, U+2066–U+2069): none belongs in a session identifier, and each
 * can split a header or a log line, or make one topic display as another.
 */
const FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/u;

/**
 * A topic, or a 400 naming the problem. Surrounding whitespace is not part of a topic: it is trimmed
 * (the spec's own form examples end values with %0A), so " t" and "t" are the same topic in every
 * place (docs/decisions.md). `what` names the field in the message.
 */
export function parseTopic(raw: string, what = "hub.topic"): Result<string> {
  const topic = raw.trim();
  if (topic === "") return fail(400, "required", `${what} is required`);
  if (topic.length > MAX_TOPIC_LENGTH) return fail(400, "invalid", `${what} is longer than ${MAX_TOPIC_LENGTH} characters`);
  const bad = FORBIDDEN.exec(topic);
  if (bad) {
    const code = bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
    return fail(400, "invalid", `${what} must not contain control or bidirectional-override characters (U+${code} at position ${bad.index})`);
  }
  return ok(topic);
}
