import { describe, expect, it } from "vitest";
import { GroupRunner } from "../../src/util/group-runner.js";

/** A runner whose groups finish only when the test says so, recording each group it was given. */
function heldRunner(maxGroup: number) {
  const groups: number[][] = [];
  const finishers: Array<(fail?: Error) => void> = [];
  let started: () => void = () => {};
  const runner = new GroupRunner<number, string>(
    (requests) =>
      new Promise((resolve, reject) => {
        groups.push([...requests]);
        finishers.push((fail) => (fail ? reject(fail) : resolve(requests.map((r) => `answer ${r}`))));
        started();
      }),
    maxGroup,
  );
  const groupStarted = (count: number) =>
    new Promise<void>((resolve) => {
      started = () => groups.length >= count && resolve();
      started();
    });
  return { runner, groups, finish: (index: number, fail?: Error) => finishers[index]!(fail), groupStarted };
}

describe("GroupRunner", () => {
  it("runs requests of one turn together, and those that arrive meanwhile as the next group, each answered with its own result", async () => {
    const { runner, groups, finish, groupStarted } = heldRunner(100);
    const first = [1, 2, 3].map((n) => runner.submit(n));
    await groupStarted(1);
    const second = [4, 5].map((n) => runner.submit(n));
    expect(groups).toEqual([[1, 2, 3]]); // one group at a time: 4 and 5 wait for it
    finish(0);
    expect(await Promise.all(first)).toEqual(["answer 1", "answer 2", "answer 3"]);
    await groupStarted(2);
    expect(groups[1]).toEqual([4, 5]);
    finish(1);
    expect(await Promise.all(second)).toEqual(["answer 4", "answer 5"]);
  });

  it("fails only the requests of a failed group, and runs the next", async () => {
    const { runner, finish, groupStarted } = heldRunner(100);
    const failing = runner.submit(1);
    await groupStarted(1);
    const after = runner.submit(2);
    finish(0, new Error("database gone"));
    await expect(failing).rejects.toThrow("database gone");
    await groupStarted(2);
    finish(1);
    expect(await after).toBe("answer 2");
  });

  it("splits a crowd into groups of at most maxGroup", async () => {
    const { runner, groups, finish, groupStarted } = heldRunner(2);
    const all = [1, 2, 3, 4, 5].map((n) => runner.submit(n));
    for (let i = 0; i < 3; i++) {
      await groupStarted(i + 1);
      finish(i);
    }
    expect(await Promise.all(all)).toHaveLength(5);
    expect(groups).toEqual([[1, 2], [3, 4], [5]]);
  });
});
