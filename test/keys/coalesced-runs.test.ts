import { CoalescedRuns } from '../../src/keys/coalesced-runs';

/** A pass that waits until the test lets it finish, counting how many started. */
function gatedPasses() {
  const releases: Array<() => void> = [];
  let started = 0;
  const pass = () =>
    new Promise<void>((resolve) => {
      started += 1;
      releases.push(resolve);
    });
  return { pass, started: () => started, finishOne: () => releases.shift()?.() };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test('requests during a run fold into exactly one more pass, which all of them wait for', async () => {
  const gate = gatedPasses();
  const runs = new CoalescedRuns(gate.pass, () => false);
  let finished = 0;
  const requests = [runs.request(), runs.request(), runs.request()].map((request) => request.then(() => finished++));
  await settle();
  expect(gate.started()).toBe(1);
  gate.finishOne();
  await settle();
  expect([gate.started(), finished]).toEqual([2, 0]);
  gate.finishOne();
  await Promise.all(requests);
  expect([gate.started(), finished]).toEqual([2, 3]);
  await runs.settled();
});

test('once stopped, a pending request starts no further pass; a new request after the run starts one', async () => {
  const gate = gatedPasses();
  let stopped = false;
  const runs = new CoalescedRuns(gate.pass, () => stopped);
  const first = runs.request();
  void runs.request();
  stopped = true;
  await settle();
  gate.finishOne();
  await first;
  await runs.settled();
  expect(gate.started()).toBe(1);
  const next = runs.request();
  await settle();
  expect(gate.started()).toBe(2);
  gate.finishOne();
  await next;
});
