// WebSocket endpoint URLs (fhircast.hl7.org/STU3/2-4-Subscribing.html): `{origin}/ws/{topic object id}/{secret}`.
// The object id routes the upgrade to the topic's Durable Object without revealing the topic; the
// 128-bit CSPRNG secret is the credential. The topic object stores only the secret's SHA-256.

/** hub.url is `{origin}/api/hub` (the main module may export only handlers, so paths live here). */
export const HUB_PATH = "/api/hub";
export const WS_PATH_PREFIX = "/ws/";
const DO_ID = /^[0-9a-f]{64}$/;
const SECRET = /^[0-9a-f]{32}$/;

const toHex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

/** A fresh 128-bit secret from the platform CSPRNG, as 32 hex characters. */
export function newSecret(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** SHA-256 of a secret, hex: what storage keeps instead of the secret. */
export async function hashSecret(secret: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret))));
}

/** `ws://` for an http origin, `wss://` for https. */
export function endpointUrl(origin: string, doId: string, secret: string): string {
  return `${origin.replace(/^http/, "ws")}${WS_PATH_PREFIX}${doId}/${secret}`;
}

/** Splits an endpoint path (`/ws/{id}/{secret}`) or full URL; undefined when it is not one of ours. */
export function parseEndpoint(urlOrPath: string): { doId: string; secret: string } | undefined {
  let path = urlOrPath;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(urlOrPath)) {
    try {
      path = new URL(urlOrPath).pathname;
    } catch {
      return undefined;
    }
  }
  if (!path.startsWith(WS_PATH_PREFIX)) return undefined;
  const [doId, secret, ...rest] = path.slice(WS_PATH_PREFIX.length).split("/");
  if (rest.length > 0 || !doId || !secret || !DO_ID.test(doId) || !SECRET.test(secret)) return undefined;
  return { doId, secret };
}
