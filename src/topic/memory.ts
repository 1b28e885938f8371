// What one instance of a topic object remembers between requests, besides its sockets' index: all of
// it in one place, so that deleting the topic's storage forgets all of it in one step (`reset`).
// Everything here is rebuilt from storage and the sockets' attachments when the object wakes.
import { AckDeadlines } from "./acks";
import { EventLogIndex } from "./event-log";
import type { TopicStore } from "./store";

export class TopicMemory {
  /** Whether this object has storage yet; reads on unknown topics must not create any. */
  hasStorage: boolean;
  /**
   * The topic's hash for logs (never the topic itself: docs/operations.md "Observability"), once the
   * object has storage. Kept by `reset`: the object still serves the same topic.
   */
  topicHash: string | undefined;
  /** The alarm time this instance last set; undefined when unknown (fresh instance, alarm just ran). */
  alarmAt: number | undefined;
  /** Which delivered events still await acknowledgements, from how many recipients (rebuilt on wake). */
  readonly acks = new AckDeadlines();
  /** The event log's index by id. */
  readonly eventLog: EventLogIndex;

  constructor(store: TopicStore, eventLogLimit: number, hasStorage: boolean) {
    this.hasStorage = hasStorage;
    this.eventLog = new EventLogIndex(store, eventLogLimit);
  }

  /** Forgets everything the deleted storage held. */
  reset(): void {
    this.hasStorage = false;
    this.alarmAt = undefined;
    this.acks.reset();
    this.eventLog.reset();
  }
}
