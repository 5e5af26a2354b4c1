import assert from "node:assert/strict";
import { test } from "node:test";

import { Metadata, status } from "@grpc/grpc-js";

import { DETAIL_KEY } from "../src/contract";
import { DaemonUnavailable, LeaseLost, SeatsExhausted, fromStatus } from "../src/errors";
import { v1 } from "../src/protos";
import { date, duration, seconds } from "../src/time";

test("an unset proto3 optional field is absent, a set zero is present", () => {
  const unset = v1.LicenceSummary.deserialize(v1.LicenceSummary.serialize({}));
  const zero = v1.LicenceSummary.deserialize(v1.LicenceSummary.serialize({ seat_cap: 0 }));
  assert.equal(unset.seat_cap, undefined);
  assert.equal(zero.seat_cap, 0);
  assert.equal(zero._seat_cap, "seat_cap");
});

test("uint64 ids arrive as decimal strings, exact past 2**53", () => {
  const big = "18446744073709551615";
  assert.equal(v1.Session.deserialize(v1.Session.serialize({ id: big })).id, big);
});

test("durations and timestamps convert to seconds and Dates", () => {
  assert.deepEqual(duration(2.5), { seconds: "2", nanos: 500_000_000 });
  assert.equal(seconds({ seconds: "2", nanos: 500_000_000 }), 2.5);
  assert.equal(date({ seconds: "1764590400", nanos: 250_000_000 })?.toISOString(), "2025-12-01T12:00:00.250Z");
});

test("a refusal at capacity decodes with its sessions and order_url from seatd-error-bin", () => {
  const metadata = new Metadata();
  const detail = {
    reason: "SEATS_EXHAUSTED",
    message: "all 1 connections are in use",
    seat_cap: 1,
    in_use: 3,
    sessions: [{ id: "7", user_code: "AA", user_name: "Anne" }],
    licence: { order_url: "https://order.example/x" },
    retry_after: { seconds: "10", nanos: 0 },
  };
  metadata.add(DETAIL_KEY, v1.ErrorDetail.serialize(detail));
  const error = fromStatus({ code: status.RESOURCE_EXHAUSTED, details: "full", metadata }, "t");
  assert.ok(error instanceof SeatsExhausted);
  assert.deepEqual(
    [error.cap, error.inUse, error.unlisted, error.retryAfter, error.orderUrl, error.sessions[0]?.userCode],
    [1, 3, 2, 10, "https://order.example/x", "AA"],
  );
});

test("a network failure without a detail decodes by its gRPC code", () => {
  const end = (code: status) => fromStatus({ code, details: "x", metadata: new Metadata() }, "t");
  assert.ok(end(status.UNAVAILABLE) instanceof DaemonUnavailable);
  assert.ok(end(status.DEADLINE_EXCEEDED) instanceof DaemonUnavailable);
  assert.ok(end(status.NOT_FOUND) instanceof LeaseLost);
});
