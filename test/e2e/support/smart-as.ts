// An EHR's SMART authorization server for the end-to-end tests: oidc-provider (a certified OpenID
// provider, by the author of jose), in this Node process on a loopback port. It issues FHIRcast scopes
// for the hub's audience, as JWTs (resource RESOURCE_JWT) or opaque tokens checked by introspection
// (resource RESOURCE_OPAQUE), by client_credentials or by an EHR launch (authorization_code with the
// `launch` parameter), and puts hub.url and hub.topic in the token response (SMART App Launch; FHIRcast
// https://fhircast.hl7.org/STU3/index.html fhircast.hl7.org/STU3/2-1-SessionDiscovery.html "hub.url and hub.topic"). The same configuration is the
// worked example of docs/operations.md "Connect your authorization server".
import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair } from "jose";
import Provider from "oidc-provider";

/** Resource indicators (RFC 8707): the same hub audience, one issuing JWTs, one issuing opaque tokens. */
export const RESOURCE_JWT = "urn:fhircast-hub:jwt";
export const RESOURCE_OPAQUE = "urn:fhircast-hub:opaque";
/** JWTs that expire after SHORT_TTL_SECONDS, for the expiry test. */
export const RESOURCE_SHORT = "urn:fhircast-hub:short";
export const SHORT_TTL_SECONDS = 2;
export const FHIRCAST_SCOPES = "fhircast/*.read fhircast/*.write";

export interface AppClient {
  client_id: string;
  client_secret: string;
  redirect_uri: string;
}

export interface SmartAs {
  issuer: string;
  /** The hub's audience (SMART_AUDIENCE). */
  audience: string;
  /** The hub's client for introspection (INTROSPECTION_CLIENT_ID / _SECRET). */
  introspector: { client_id: string; client_secret: string };
  apps: AppClient[];
  ehr: { client_id: string; client_secret: string };
  /** The EHR opens a session: its launch id for `topic`, for the apps it launches. */
  newLaunch(topic: string): string;
  close(): Promise<void>;
}

export async function startSmartAs(opts: { port: number; hubUrl: string; audience: string }): Promise<SmartAs> {
  const issuer = `http://127.0.0.1:${opts.port}`;
  const launches = new Map<string, string>(); // launch id → topic (the EHR's sessions)
  const grantTopics = new Map<string, string>(); // grant id → topic (a completed launch)
  const secret = () => crypto.randomUUID();
  const introspector = { client_id: "fhircast-hub", client_secret: secret() };
  const ehr = { client_id: "ehr", client_secret: secret() };
  const apps: AppClient[] = ["app-a", "app-b"].map((id) => ({ client_id: id, client_secret: secret(), redirect_uri: `http://127.0.0.1:${opts.port}/app-callback/${id}` }));

  // The server's own signing key (RS256, what most EHR authorization servers use).
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const provider = new Provider(issuer, {
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: crypto.randomUUID(), alg: "RS256", use: "sig" }] },
    clients: [
      ...apps.map((a) => ({
        client_id: a.client_id, client_secret: a.client_secret, redirect_uris: [a.redirect_uri],
        grant_types: ["authorization_code"], response_types: ["code"], token_endpoint_auth_method: "client_secret_basic",
      })),
      { ...ehr, grant_types: ["client_credentials"], response_types: [], redirect_uris: [], token_endpoint_auth_method: "client_secret_basic" },
      { ...introspector, grant_types: [], response_types: [], redirect_uris: [], token_endpoint_auth_method: "client_secret_basic" },
    ],
    scopes: ["openid", "launch"],
    extraParams: ["launch"],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Only the hub may introspect; a client may revoke only its own tokens.
      introspection: { enabled: true, allowedPolicy: (_ctx: unknown, client: { clientId: string }) => client.clientId === introspector.client_id },
      revocation: { enabled: true, allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) => client.clientId === token.clientId },
      resourceIndicators: {
        enabled: true,
        // The launch asks for one resource; the token endpoint then issues for it without repeating it.
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf ?? RESOURCE_JWT,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, indicator: string) => {
          if (![RESOURCE_JWT, RESOURCE_OPAQUE, RESOURCE_SHORT].includes(indicator)) throw new Provider.errors.InvalidTarget();
          return {
            scope: FHIRCAST_SCOPES,
            audience: opts.audience,
            accessTokenTTL: indicator === RESOURCE_SHORT ? SHORT_TTL_SECONDS : 600,
            accessTokenFormat: indicator === RESOURCE_OPAQUE ? "opaque" : "jwt",
            jwt: { sign: { alg: "RS256" } },
          };
        },
      },
    },
    // The topic claim: in the JWT, or (opaque) stored with the token and returned by introspection.
    extraTokenClaims: (ctx: { oidc: { body?: Record<string, unknown> } }, token: { grantId?: string }) => {
      const topic = token.grantId ? grantTopics.get(token.grantId) : launches.get(String(ctx.oidc.body?.launch ?? ""));
      return topic ? { "hub.topic": topic } : undefined;
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // A clinician already signed in to the EHR: the interaction logs in and consents by itself.
    findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
    // Access token lifetimes come from the resource server (accessTokenTTL), oidc-provider's default ttl functions.
    ttl: { AuthorizationCode: 60, Interaction: 300, Session: 3600, Grant: 3600 },
  });

  provider.use(async (ctx: any, next: () => Promise<void>) => {
    if (ctx.path.startsWith("/interaction/")) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const launch = String(details.params.launch ?? "");
      if (!launches.has(launch)) {
        ctx.status = 400;
        ctx.body = "unknown launch";
        return;
      }
      let result: Record<string, unknown>;
      if (details.prompt.name === "login") result = { login: { accountId: "clinician-1" } };
      else {
        const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
        const missing = details.prompt.details;
        if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, (scopes as string[]).join(" "));
        const grantId = await grant.save();
        grantTopics.set(grantId, launches.get(launch)!);
        result = { consent: { grantId } };
      }
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
      return;
    }
    await next();
    // SMART: the token response carries the launch context next to access_token.
    if (ctx.path === "/token" && ctx.status === 200 && ctx.body?.access_token) {
      const topic = await topicOf(ctx.body.access_token);
      if (topic) ctx.body = { ...ctx.body, "hub.url": opts.hubUrl, "hub.topic": topic };
    }
  });

  async function topicOf(accessToken: string): Promise<string | undefined> {
    const parts = accessToken.split(".");
    if (parts.length === 3) return JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8"))["hub.topic"];
    const opaque = await provider.AccessToken.find(accessToken) ?? await provider.ClientCredentials.find(accessToken);
    return opaque?.extra?.["hub.topic"];
  }

  const server: Server = createServer(provider.callback());
  await new Promise<void>((resolve) => server.listen(opts.port, "127.0.0.1", resolve));
  return {
    issuer,
    audience: opts.audience,
    introspector,
    apps,
    ehr,
    newLaunch(topic) {
      const id = crypto.randomUUID();
      launches.set(id, topic);
      return id;
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
