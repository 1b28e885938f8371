// The Topic Durable Object: one per hub.topic. It owns the topic's subscriptions and their WebSockets,
// the open contexts (multi-tab, fhircast.hl7.org/STU3/4-2-2-multitab-considerations.html), versions and content (fhircast.hl7.org/STU3/2-10-ContentSharing.html), the event log and every deadline.
// Order per topic comes from the object's input gates: each request runs its storage writes in one
// synchronous transaction, then sends; the output gate holds frames until the write is durable.
//
// This class holds only the RPC methods and the runtime's hooks; each delegates to the module of its
// capability (README.md "Layout"), all working with one TopicCore (./core.ts).
import { DurableObject } from "cloudflare:workers";
import { applySettings, type SettingsEnv } from "../config";
import { upgradeRequired } from "../http/responses";
import type { CurrentContext, InspectView, Result } from "../fhircast/wire";
import { TopicCore } from "./core";
import { runDeadlines } from "./deadlines";
import { acceptInspector, inspect, INSPECTOR_PATH } from "./inspector";
import { type PublishCall, publish } from "./publish";
import { currentContext } from "./replay";
import { migrate } from "./schema";
import { dropSocket, receiveFrame } from "./socket-events";
import type { SocketIndex } from "./sockets";
import { reconcileSockets } from "./subscription-end";
import { connect, subscribe, type SubscribeCall, unsubscribe } from "./subscriptions";

export class Topic extends DurableObject<SettingsEnv> {
  private readonly core: TopicCore;
  /** The same index as `core.sockets`; tests reach it here (test/helpers/hub.ts `expireAnswers`). */
  private readonly sockets: SocketIndex;

  constructor(ctx: DurableObjectState, env: SettingsEnv) {
    super(ctx, env);
    applySettings(env); // the log level and analytics, before the settings are read
    const core = (this.core = new TopicCore(ctx, env));
    this.sockets = core.sockets;
    // Keep-alive without waking the object: the runtime answers "ping" with "pong" itself.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    if (core.memory.hasStorage) {
      // A wake: bring the schema up to date, then rebuild memory from storage and the sockets.
      migrate(ctx.storage);
      core.memory.topicHash = core.store.getMeta("topic_hash");
      reconcileSockets(core);
      core.memory.acks.load(core.sockets.attachments().map((a) => a.pending));
    }
  }

  // ---- RPC (the Worker's calls; refusals are Result values, never thrown) ------------------------

  /** Subscribes, or re-subscribes an existing subscription (./subscriptions.ts). */
  async subscribe(req: SubscribeCall): Promise<Result<{ endpoint: string }>> {
    return subscribe(this.core, req);
  }

  /** Cancels a subscription (fhircast.hl7.org/STU3/2-4-Subscribing.html). */
  async unsubscribe(endpoint: string, clientId?: string): Promise<Result<{ endpoint: string }>> {
    return unsubscribe(this.core, endpoint, clientId);
  }

  /** Accepts a validated event and distributes it (./publish.ts). */
  async publish(call: PublishCall): Promise<Result<{ seq: number }>> {
    return publish(this.core, call);
  }

  /** The current context (fhircast.hl7.org/STU3/2-9-GetCurrentContext.html), with its open's event name for the caller's scope check. */
  async currentContext(): Promise<{ context: CurrentContext; eventName?: string }> {
    return currentContext(this.core);
  }

  /** A snapshot of the topic for the inspector. */
  async inspect(): Promise<InspectView> {
    return inspect(this.core);
  }

  // ---- the runtime's hooks -----------------------------------------------------------------

  /** WebSocket upgrades: a subscriber's `/ws/{id}/{secret}`, or the inspector's live socket. */
  override async fetch(request: Request): Promise<Response> {
    const notUpgrade = upgradeRequired(request);
    if (notUpgrade) return notUpgrade;
    const path = new URL(request.url).pathname;
    if (path === INSPECTOR_PATH) return acceptInspector(this.core, request);
    return connect(this.core, path);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    receiveFrame(this.core, ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    dropSocket(this.core, ws, code);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    dropSocket(this.core, ws, 1006);
  }

  /** Runs every due deadline (./deadlines.ts). */
  override async alarm(): Promise<void> {
    runDeadlines(this.core);
  }
}
