import assert from "node:assert/strict";
import { test } from "node:test";

import { SeatCore } from "../src/core";
import { SeatState } from "../src/events";
import { Backoff, Lease } from "../src/lease";

const TERMS = { ttl: 30, keepaliveInterval: 10, reattachGrace: 10 };
const GRANT = { sessionId: "7", token: "t", terms: TERMS, licence: null };

test("a renewal counts from when its ping was sent, not from its answer", () => {
  const lease = new Lease(TERMS, 0);
  const seq = lease.pingSent(10);
  lease.acknowledged(seq);
  assert.equal(lease.assuredUntil, 40);
});

test("an overdue renewal puts the seat in jeopardy, never lost", () => {
  const lease = new Lease(TERMS, 0);
  assert.deepEqual(lease.check(16), { type: "state", old: SeatState.ACTIVE, state: SeatState.JEOPARDY });
  assert.equal(lease.check(1_000), null);
  assert.equal(lease.state, SeatState.JEOPARDY);
});

test("a broken stream keeps the seat assured only for the reattach grace", () => {
  const lease = new Lease(TERMS, 0);
  lease.broken();
  assert.equal(lease.assuredUntil, 10);
});

test("reattach delays stay within half the reattach grace whatever the attempt", () => {
  const core = new SeatCore({ ...GRANT, terms: { ...TERMS, reattachGrace: 1 } }, 0, new Backoff(0.2, 5, () => 0.999), "t");
  const delays = Array.from({ length: 12 }, () => core.onStreamEnd().delay);
  assert.ok(Math.max(...delays) <= 0.5, `delays ${delays}`);
});

test("after Draining the reattach waits about the announced delay", () => {
  const core = new SeatCore(GRANT, 0, new Backoff(0.2, 5, () => 0.5), "t");
  core.onResponse({ event: "draining", draining: { reattach_after: { seconds: "4", nanos: 0 } } }, 0);
  assert.equal(core.onStreamEnd().delay, 4);
});

test("an Evicted event ends the seat with its reason and actor", () => {
  const core = new SeatCore(GRANT, 0, new Backoff(), "t");
  const events = core.onResponse(
    { event: "evicted", evicted: { session_id: "7", reason: "audit", by: "root", at: { seconds: "60", nanos: 0 } } },
    0,
  );
  assert.deepEqual(events, [
    { type: "evicted", sessionId: "7", reason: "audit", by: "root", at: new Date(60_000) },
    { type: "state", old: SeatState.ACTIVE, state: SeatState.EVICTED },
  ]);
});

test("a ping reports no idleness until the application does", () => {
  const core = new SeatCore(GRANT, 0, new Backoff(), "t");
  assert.equal(core.ping(10).request.ping?.idle, undefined);
  core.touch(10);
  assert.deepEqual(core.ping(72.5).request.ping?.idle, { seconds: "62", nanos: 500_000_000 });
});

test("the idleSeconds callback wins over touch, is capped at a year, and a failing one reports nothing", () => {
  let idle: number | null = 400 * 86400;
  const core = new SeatCore(GRANT, 0, new Backoff(), "t", () => {
    if (idle === -1) throw new Error("broken");
    return idle;
  });
  core.touch(0);
  assert.deepEqual(core.ping(10).request.ping?.idle, { seconds: String(365 * 86400), nanos: 0 });
  idle = null;
  assert.equal(core.ping(20).request.ping?.idle, undefined);
  idle = -1;
  const quiet = console.error;
  console.error = () => undefined;
  try {
    assert.equal(core.ping(30).request.ping?.idle, undefined);
  } finally {
    console.error = quiet;
  }
});

test("an IdleWarning reaches the application with when, why and how idle", () => {
  const core = new SeatCore(GRANT, 0, new Backoff(), "t");
  const events = core.onResponse(
    {
      event: "idle_warning",
      idle_warning: {
        evict_at: { seconds: "120", nanos: 0 },
        reason: "idle for 10 minutes while 2 wait",
        idle: { seconds: "600", nanos: 0 },
        withdrawn: false,
      },
    },
    0,
  );
  assert.deepEqual(events, [
    { type: "idle-warning", evictAt: new Date(120_000), reason: "idle for 10 minutes while 2 wait", idle: 600, withdrawn: false },
  ]);
});
