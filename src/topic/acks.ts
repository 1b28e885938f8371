// Acknowledgement deadlines (fhircast.hl7.org/STU3/2-5-ReceiveEventNotification.html): which delivered events some subscriber has not answered yet. Kept
// in memory, rebuilt from the sockets' attachments when the object wakes (each attachment lists the
// seqs its socket still owes). Storage holds a single `ack` deadline row, never later than the
// earliest time an answer can be overdue, so a publish writes nothing for acknowledgements while that
// row stands and the alarm runs about once per timeout, not once per event (docs/performance.md).
// When the row fires, each waiting event's time comes from the event log's `accepted_at`.

/** Shortest gap between two acknowledgement checks, so that a slow subscriber cannot cause one alarm per event. */
export const ACK_CHECK_GAP_MS = 100;

export class AckDeadlines {
  /** Per seq (in seq order): recipients that have not answered, and when this instance accepted it. */
  private waiting = new Map<number, { recipients: number; acceptedAt?: number }>();
  /** Whether a stored `ack` row is known to be due no later than any event delivered from now on. */
  private rowStands = false;

  /** Whether an answer awaited from now on needs the `ack` deadline row written (none is known to stand). */
  needsRow(): boolean {
    return !this.rowStands;
  }

  /** The `ack` row was written, due no later than any answer awaited from now on. */
  rowWritten(): void {
    this.rowStands = true;
  }

  /** The alarm consumed the `ack` row: the next awaited answer writes one again. */
  rowConsumed(): void {
    this.rowStands = false;
  }

  /** Rebuilds the state after a wake from the seqs each socket still owes. */
  load(pending: Iterable<number[] | undefined>): void {
    this.reset();
    const seqs: number[] = [];
    for (const list of pending) seqs.push(...(list ?? []));
    for (const seq of seqs.sort((a, b) => a - b)) {
      const w = this.waiting.get(seq);
      if (w) w.recipients++;
      else this.waiting.set(seq, { recipients: 1 });
    }
  }

  /** Event `seq`, accepted at `acceptedAt`, went to `recipients` sockets that each owe an answer. */
  delivered(seq: number, acceptedAt: number, recipients: number): void {
    if (recipients > 0 && !this.waiting.has(seq)) this.waiting.set(seq, { recipients, acceptedAt });
  }

  /** One recipient answered `seq` (success or failure: either way it is no longer waited for). */
  answered(seq: number): void {
    const w = this.waiting.get(seq);
    if (!w) return;
    if (w.recipients <= 1) this.waiting.delete(seq);
    else w.recipients--;
  }

  /**
   * Takes the waiting seqs that are overdue at `now`, oldest first, and returns when the next check is
   * due (undefined when nothing is awaited). `logged` gives the acceptance times the event log holds
   * (it is authoritative; an event neither logged nor remembered was accepted long ago).
   */
  takeOverdue(now: number, timeoutMs: number, logged: (fromSeq: number) => Map<number, number>): { seqs: number[]; next: number | undefined } {
    const first = this.waiting.keys().next();
    if (first.done) return { seqs: [], next: undefined };
    const times = logged(first.value);
    const seqs: number[] = [];
    let next: number | undefined;
    for (const [seq, w] of this.waiting) {
      const due = (times.get(seq) ?? w.acceptedAt ?? 0) + timeoutMs;
      if (due <= now) seqs.push(seq);
      else next = Math.min(next ?? Infinity, due);
    }
    for (const seq of seqs) this.waiting.delete(seq);
    return { seqs, next: next === undefined ? undefined : Math.max(next, now + ACK_CHECK_GAP_MS) };
  }

  /** Forgets everything (a fresh start or the topic's storage was deleted). */
  reset(): void {
    this.waiting = new Map();
    this.rowStands = false;
  }
}
