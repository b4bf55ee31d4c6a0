import { describe, expect, it, vi } from "vitest";
import { GroupRunner } from "../../src/util/group-runner.js";

/**
 * A runner whose groups finish only when the test says so, recording each group it was given. A group
 * holding a request listed in `failing` fails as a whole, as one statement would.
 */
function heldRunner(limits: { maxGroup: number; maxInFlight: number; gatherMs?: number }, failing: readonly number[] = []) {
  const groups: number[][] = [];
  const sizes: number[] = [];
  const finishers: Array<() => void> = [];
  let started: () => void = () => {};
  const runner = new GroupRunner<number, string>(
    (requests) =>
      new Promise((resolve, reject) => {
        groups.push([...requests]);
        const bad = requests.find((r) => failing.includes(r));
        finishers.push(() => (bad !== undefined ? reject(new Error(`request ${bad} is refused`)) : resolve(requests.map((r) => `answer ${r}`))));
        started();
      }),
    limits,
    (size) => sizes.push(size),
  );
  const groupStarted = (count: number) =>
    new Promise<void>((resolve) => {
      started = () => groups.length >= count && resolve();
      started();
    });
  return { runner, groups, sizes, finish: (index: number) => finishers[index]!(), groupStarted };
}

describe("GroupRunner", () => {
  it("runs requests of one turn together, and those that arrive meanwhile as the next group, each answered with its own result", async () => {
    const { runner, groups, finish, groupStarted } = heldRunner({ maxGroup: 100, maxInFlight: 1 });
    const first = [1, 2, 3].map((n) => runner.submit(n));
    await groupStarted(1);
    const second = [4, 5].map((n) => runner.submit(n));
    await new Promise((resolve) => setImmediate(resolve));
    expect(groups).toEqual([[1, 2, 3]]); // one group at a time: 4 and 5 wait for it
    finish(0);
    expect(await Promise.all(first)).toEqual(["answer 1", "answer 2", "answer 3"]);
    await groupStarted(2);
    expect(groups[1]).toEqual([4, 5]);
    finish(1);
    expect(await Promise.all(second)).toEqual(["answer 4", "answer 5"]);
  });

  it("with gatherMs, gathers the requests that arrive within that time of the first into its group", async () => {
    vi.useFakeTimers();
    try {
      const { runner, groups, finish } = heldRunner({ maxGroup: 100, maxInFlight: 1, gatherMs: 10 });
      const answers = [runner.submit(1)];
      await vi.advanceTimersByTimeAsync(6);
      answers.push(runner.submit(2));
      await vi.advanceTimersByTimeAsync(3);
      expect(groups).toEqual([]); // still gathering
      answers.push(runner.submit(3));
      await vi.advanceTimersByTimeAsync(1);
      expect(groups).toEqual([[1, 2, 3]]);
      finish(0);
      expect(await Promise.all(answers)).toEqual(["answer 1", "answer 2", "answer 3"]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("runs up to maxInFlight groups at once", async () => {
    const { runner, groups, finish, groupStarted } = heldRunner({ maxGroup: 100, maxInFlight: 2 });
    const first = runner.submit(1);
    await groupStarted(1);
    const second = runner.submit(2);
    await groupStarted(2); // started while the first still runs
    const third = runner.submit(3);
    await new Promise((resolve) => setImmediate(resolve));
    expect(groups).toEqual([[1], [2]]);
    finish(1);
    expect(await second).toBe("answer 2");
    await groupStarted(3);
    finish(0);
    finish(2);
    expect(await Promise.all([first, third])).toEqual(["answer 1", "answer 3"]);
  });

  it("runs a failed group again one request at a time, so only the request at fault fails", async () => {
    const { runner, groups, finish, groupStarted } = heldRunner({ maxGroup: 100, maxInFlight: 1 }, [2]);
    const all = [1, 2, 3].map((n) => runner.submit(n));
    await groupStarted(1);
    finish(0);
    await groupStarted(4);
    expect(groups).toEqual([[1, 2, 3], [1], [2], [3]]);
    [1, 2, 3].forEach(finish);
    const settled = await Promise.allSettled(all);
    expect(settled.map((s) => (s.status === "fulfilled" ? s.value : (s.reason as Error).message))).toEqual(["answer 1", "request 2 is refused", "answer 3"]);
  });

  it("splits a crowd into groups of at most maxGroup, and tells each group's size", async () => {
    const { runner, groups, sizes, finish, groupStarted } = heldRunner({ maxGroup: 2, maxInFlight: 1 });
    const all = [1, 2, 3, 4, 5].map((n) => runner.submit(n));
    for (let i = 0; i < 3; i++) {
      await groupStarted(i + 1);
      finish(i);
    }
    expect(await Promise.all(all)).toHaveLength(5);
    expect(groups).toEqual([[1, 2], [3, 4], [5]]);
    expect(sizes).toEqual([2, 2, 1]);
  });
});
