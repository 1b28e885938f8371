// Workers-side half of test/helpers/jwks-server.ts: an authorization server's keys and JWKS endpoint
// for tests of AUTH_MODE=smart. Keys are made here with jose; what the endpoint answers is set per path.
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { inject } from "vitest";

declare module "vitest" {
  interface ProvidedContext {
    jwksOrigin: string;
  }
}

export const SMART_ISSUER = "https://as.example/smart";
export const SMART_AUDIENCE = "https://hub.example/api/hub";

/** A fresh path on the JWKS server, so each test has a key set (and a hub-side cache) of its own. */
export function jwksUrl(label: string): string {
  return `${inject("jwksOrigin")}/${label}-${crypto.randomUUID()}`;
}

/** Makes `url` answer exactly this (status, Content-Type, body text). */
export async function answer(url: string, status: number, contentType: string, body: string): Promise<void> {
  const res = await fetch(url, { method: "PUT", body: JSON.stringify({ status, contentType, body }) });
  if (res.status !== 204) throw new Error(`JWKS server: PUT ${url} answered ${res.status}`);
}

/** The last request to `url`: its Authorization header and body. */
export async function lastRequest(url: string): Promise<{ authorization?: string; body: string } | null> {
  const u = new URL(url);
  return (await (await fetch(`${u.origin}/__last${u.pathname}`)).json()) as { authorization?: string; body: string } | null;
}

/** Makes `url` serve these public keys as a JWKS. */
export function serveKeys(url: string, ...keys: SigningKey[]): Promise<void> {
  return answer(url, 200, "application/json", JSON.stringify({ keys: keys.map((k) => k.publicJwk) }));
}

/** How often the hub fetched `url`. */
export async function fetchCount(url: string): Promise<number> {
  const u = new URL(url);
  return Number(await (await fetch(`${u.origin}/__count${u.pathname}`)).text());
}

export interface SigningKey {
  kid: string;
  publicJwk: JWK;
  /** A token signed with this key: SMART issuer (or `claims.iss`) and audience, every FHIRcast scope, valid for an hour, plus `claims`. */
  sign(claims?: Record<string, unknown>): Promise<string>;
}

export async function signingKey(): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = crypto.randomUUID();
  return {
    kid,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" },
    sign: (claims = {}) => {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ scope: "fhircast/*.* fhircast-hub/inspect", client_id: "smart-app", iat: now, ...claims })
        .setProtectedHeader({ alg: "ES256", kid, typ: "JWT" })
        .setIssuer(typeof claims.iss === "string" ? claims.iss : SMART_ISSUER)
        .setAudience(SMART_AUDIENCE)
        .setSubject("smart-app")
        .setExpirationTime(now + 3600)
        .sign(privateKey);
    },
  };
}
