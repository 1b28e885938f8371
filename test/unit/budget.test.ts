// The per-socket byte budget (SOCKET_BUFFER_BYTES, src/topic/sockets.ts): when the hub stops sending
// to a socket, from what it owes acknowledgements for and what the runtime has not sent yet.
import { describe, expect, it } from "vitest";
import { overBudget, unsentBytes } from "../../src/topic/sockets";

const BUDGET = 4 * 1024 * 1024;
const MB = 1_000_000;

describe("the byte budget", () => {
  it("a frame that would take what a subscriber owes over the budget is over it; up to the budget is not", () => {
    expect(overBudget(3 * MB, 0, MB, BUDGET)).toBe(false); // 4,000,000 ≤ 4,194,304
    expect(overBudget(3.5 * MB, 0, MB, BUDGET)).toBe(true);
    expect(overBudget(BUDGET - 10, 0, 10, BUDGET)).toBe(false);
    expect(overBudget(BUDGET - 10, 0, 11, BUDGET)).toBe(true);
  });

  it("a socket that owes nothing and has nothing unsent always gets one frame, however large", () => {
    expect(overBudget(0, 0, 10 * BUDGET, BUDGET)).toBe(false);
  });

  it("what the runtime has not sent counts too (the only measure for inspectors, which acknowledge nothing)", () => {
    expect(overBudget(0, 3.5 * MB, MB, BUDGET)).toBe(true);
    expect(overBudget(0, MB, MB, BUDGET)).toBe(false);
  });

  it("bufferedAmount is read where the runtime has it, 0 where it does not (e.g. the test runtime's socket pairs)", () => {
    expect(unsentBytes({ bufferedAmount: 1234 } as unknown as WebSocket)).toBe(1234);
    expect(unsentBytes({} as unknown as WebSocket)).toBe(0);
  });
});
