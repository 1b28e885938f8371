// The event log's index in memory, by id: acknowledgements (N per event) and the resend check never
// query SQL (the log has no index on `id`: docs/storage.md). Loaded from the log once per instance;
// it keeps at least as many ids as the log holds rows, so an id it lacks is not in the log either.
import { type TopicStore, TRIM_EVERY } from "./store";

/** What the index keeps of a logged event. */
export interface LoggedEvent {
  seq: number;
  name: string;
  accepted_at: number;
}

export class EventLogIndex {
  /** By id, oldest first (a resend moves to the end); undefined until first used. */
  private byId: Map<string, LoggedEvent> | undefined;

  /** `limit`: EVENT_LOG_LIMIT, the rows the log is trimmed back to. */
  constructor(
    private readonly store: TopicStore,
    private readonly limit: number,
  ) {}

  /** The logged event with this id, if the log holds it. */
  get(id: string): LoggedEvent | undefined {
    return this.all().get(id);
  }

  /** Records an event just appended to the log (a resent id moves to the end). */
  note(id: string, seq: number, name: string, acceptedAt: number): void {
    const index = this.all();
    index.delete(id);
    index.set(id, { seq, name, accepted_at: acceptedAt });
    // The log holds at most EVENT_LOG_LIMIT + TRIM_EVERY - 1 rows (store.appendEvent).
    if (index.size > this.limit + TRIM_EVERY) index.delete(index.keys().next().value!);
  }

  /** Forgets the index (the topic's storage was deleted); the next use loads it again. */
  reset(): void {
    this.byId = undefined;
  }

  private all(): Map<string, LoggedEvent> {
    if (!this.byId) {
      this.byId = new Map();
      for (const e of this.store.eventIndex()) this.note(e.id, e.seq, e.name, e.accepted_at);
    }
    return this.byId;
  }
}
