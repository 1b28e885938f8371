// Acknowledgement deadlines (src/topic/acks.ts): which delivered events still await answers, when an
// answer is overdue (the log's acceptance time is authoritative), and the state rebuilt on wake.
import { describe, expect, it } from "vitest";
import { ACK_CHECK_GAP_MS, AckDeadlines } from "../../src/topic/acks";

const T = 10_000;
const none = () => new Map<number, number>();

describe("acknowledgement deadlines", () => {
  it("an event is overdue only while some recipient still owes an answer, and only once its time is up", () => {
    const acks = new AckDeadlines();
    acks.delivered(1, 1000, 2);
    acks.delivered(2, 2000, 1);
    acks.answered(1);
    expect(acks.takeOverdue(500, T, none)).toEqual({ seqs: [], next: 1000 + T });
    acks.answered(2); // event 2 fully answered; event 1 still owes one answer
    expect(acks.takeOverdue(2000 + T, T, none)).toEqual({ seqs: [1], next: undefined });
    // Taken once: a second check finds nothing.
    expect(acks.takeOverdue(3000 + T, T, none)).toEqual({ seqs: [], next: undefined });
  });

  it("events sent to nobody are not awaited, and a fully answered event is never overdue", () => {
    const acks = new AckDeadlines();
    acks.delivered(1, 0, 0);
    acks.delivered(2, 0, 1);
    acks.answered(2);
    acks.answered(2); // an extra answer changes nothing
    expect(acks.takeOverdue(T * 5, T, none)).toEqual({ seqs: [], next: undefined });
  });

  it("the event log's acceptance time wins over this instance's record (time passes in storage)", () => {
    const acks = new AckDeadlines();
    acks.delivered(7, 5000, 1);
    // This instance accepted it at 5000 (due 15000); the log says 0 (due T).
    expect(acks.takeOverdue(T, T, () => new Map([[7, 0]])).seqs).toEqual([7]);
  });

  it("after a wake the awaited events come from the sockets' pending lists; one trimmed from the log is overdue", () => {
    const acks = new AckDeadlines();
    acks.load([[3, 4], [4], undefined, []]);
    const logged = () => new Map([[4, 50_000]]); // 3 was trimmed from the log
    expect(acks.takeOverdue(50_000, T, logged)).toEqual({ seqs: [3], next: 50_000 + T });
    acks.answered(4);
    expect(acks.takeOverdue(50_000 + T, T, logged).seqs).toEqual([4]); // the second socket still owed it
  });

  it("the next check is never sooner than ACK_CHECK_GAP_MS", () => {
    const acks = new AckDeadlines();
    acks.delivered(1, 0, 1);
    acks.delivered(2, 1, 1);
    const { seqs, next } = acks.takeOverdue(T, T, none);
    expect(seqs).toEqual([1]);
    expect(next).toBe(T + ACK_CHECK_GAP_MS);
  });
});
