// Request bodies: content-type dispatch, size-limited reading (413 without buffering past the limit),
// JSON parsing and the `{topic}` path segment, each refusing bad input with a 4xx result.
import type { IRequest } from "itty-router";
import { parseTopic } from "../fhircast/topic-name";
import { fail, ok, type Result } from "../fhircast/wire";

export type BodyKind = "form" | "json" | "other";

export function bodyKind(request: Request): BodyKind {
  const type = (request.headers.get("Content-Type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") return "form";
  if (type === "application/json" || type === "application/fhir+json") return "json";
  return "other";
}

/**
 * Reads the body as text, refusing more than `max` bytes (413) without buffering past the limit. A body
 * that breaks off (the client hung up, or its stream failed) is the client's doing: 400, not a 500.
 */
export async function readBody(request: Request, max: number): Promise<Result<string>> {
  try {
    return await readBodyBytes(request, max);
  } catch {
    return fail(400, "incomplete", "the request body ended before it was complete (the client closed the connection?)");
  }
}

async function readBodyBytes(request: Request, max: number): Promise<Result<string>> {
  const declared = Number(request.headers.get("Content-Length") ?? "0");
  const tooLarge = () => fail(413, "too-long", `request body is larger than this hub's limit of ${max} bytes`);
  if (declared > max) return tooLarge();
  if (!request.body) return ok("");
  // With a Content-Length (nearly always) the body cannot exceed it: read it in one native call.
  if (request.headers.has("Content-Length")) return decodeUtf8(new Uint8Array(await request.arrayBuffer()));
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      return tooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return decodeUtf8(bytes);
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function decodeUtf8(bytes: Uint8Array): Result<string> {
  try {
    return ok(utf8.decode(bytes));
  } catch {
    return fail(400, "invalid", "request body is not valid UTF-8");
  }
}

/** A body that opens like a JSON object or array; no form parameter name starts with `{` or `[`. */
export function looksLikeJson(text: string): boolean {
  const first = text.trimStart()[0];
  return first === "{" || first === "[";
}

/**
 * Deepest nesting of arrays and objects a JSON body may have (the envelope counts as 1). FHIR
 * resources nest far less (20 levels of `extension` inside an update Bundle are about 50); anything
 * deeper is refused before parsing, because a value nested thousands deep parses fine but later blows
 * the stack wherever it is copied or serialized (RPC, structured clone, JSON.stringify).
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether `text` nests arrays/objects deeper than `max`. One pass without recursion (it cannot blow
 * the stack itself), about a third of JSON.parse's time; brackets inside strings do not count.
 * Malformed text is left to JSON.parse.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++; // the escaped character cannot end the string
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > max) return true;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return false;
}

export function parseJson(text: string): Result<unknown> {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    return fail(400, "too-long", `request body nests arrays or objects deeper than this hub's limit of ${MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)`);
  }
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (e) {
    return fail(400, "invalid", `request body is not valid JSON: ${(e as Error).message}`);
  }
}

/**
 * The `{topic}` path segment, percent-decoded and held to the hub's topic rule (src/fhircast/topic-name.ts);
 * a malformed escape is the client's error (400), not a 500.
 */
export function pathTopic(request: IRequest): Result<string> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(request.params.topic!);
  } catch {
    return fail(400, "invalid", "the topic in the URL is not valid percent-encoding");
  }
  return parseTopic(decoded, "the topic in the URL");
}
