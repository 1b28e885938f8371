// What every capability of the topic object works with (./object.ts is the class; each capability is
// a module of functions taking this): the object's state, settings, storage and sockets, which never
// change for the instance, and its per-instance memory, the one thing that does. Plus the few steps
// they all share: logging, the topic's name, activity, storage on first write and the single alarm.
import { hubSettings, type HubConfig, type SettingsEnv } from "../config";
import { log } from "../log";
import { TopicMemory } from "./memory";
import { hasSchema, migrate } from "./schema";
import { SocketIndex } from "./sockets";
import { TopicStore } from "./store";

export class TopicCore {
  readonly config: HubConfig;
  readonly store: TopicStore;
  readonly sockets: SocketIndex;
  readonly memory: TopicMemory;

  constructor(readonly ctx: DurableObjectState, env: SettingsEnv) {
    this.config = hubSettings(env).config;
    this.store = new TopicStore(ctx.storage.sql);
    this.sockets = new SocketIndex(ctx, this.config.socketBufferBytes);
    this.memory = new TopicMemory(this.store, this.config.eventLogLimit, hasSchema(ctx.storage.sql));
  }

  /** Logs with the topic's hash (never the topic: docs/operations.md "Observability"). */
  log(msg: string, fields: Parameters<typeof log>[1], severity?: "info" | "warn"): void {
    log(msg, { topic: this.memory.topicHash, ...fields }, severity);
  }

  /** Creates the schema on the first write; `topicHash` is the topic's hash for logs (computed by the caller). */
  ensureStorage(topic: string, topicHash: string): void {
    if (this.memory.hasStorage) return;
    migrate(this.ctx.storage);
    const now = Date.now();
    this.store.setMeta("topic", topic);
    this.store.setMeta("topic_hash", topicHash);
    this.memory.topicHash = topicHash;
    this.store.setMeta("last_activity", String(now));
    this.store.setDeadline("idle", "", now + this.config.topicIdleSeconds * 1000);
    this.memory.hasStorage = true;
    this.scheduleAlarm();
  }

  topicName(): string {
    return this.store.getMeta("topic") ?? "";
  }

  touch(now: number): void {
    this.store.setMeta("last_activity", String(now));
  }

  /** Points the object's single alarm at the earliest deadline. */
  scheduleAlarm(): void {
    // Inspector sockets end with their tokens; their expiries live in their attachments, not in the
    // deadlines table, so that an inspected topic without storage gets none (docs/decisions.md).
    const next = earliest(this.memory.hasStorage ? this.store.nextDeadline() : undefined, this.sockets.nextInspectorExpiry());
    if (next === this.memory.alarmAt) return;
    this.memory.alarmAt = next;
    if (next === undefined) void this.ctx.storage.deleteAlarm();
    else void this.ctx.storage.setAlarm(next);
  }

  /** Makes sure the alarm fires no later than `due`, a deadline just written (no query when it already does). */
  alarmNoLaterThan(due: number): void {
    if (this.memory.alarmAt === undefined || due < this.memory.alarmAt) this.scheduleAlarm();
  }
}

/** The earlier of two optional times. */
function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
