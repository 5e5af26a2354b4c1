#!/usr/bin/env node
/**
 * `seat-node`: hold a seat from a terminal, like the Python library's `seat` (the same lines
 * and exit codes): 0 released on SIGINT/SIGTERM (or status reachable), 1 daemon unreachable,
 * 2 at capacity (no wait, the wait ran out, or SIGINT/SIGTERM while waiting), 3 evicted, 4 lease lost, 5 the licence allows
 * no new connection, 6 the daemon refused for now (rate limited, queue full, storage full),
 * 7 superseded by another instance holding the same session, 8 the site's seat policy refused
 * the seat (the line names the rule and its group).
 */
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

import { SeatClient, type Seat } from "./client";
import {
  DaemonUnavailable,
  InvalidRequest,
  LicenceInvalid,
  PolicyRefused,
  SeatError,
  SeatsExhausted,
  ServerBusy,
} from "./errors";
import { SeatState, type SeatEvent, type SessionInfo } from "./events";
import type { LicenceSummary__Output } from "./gen/seatd/v1/LicenceSummary";

const EXIT = {
  OK: 0,
  UNREACHABLE: 1,
  FULL: 2,
  EVICTED: 3,
  LOST: 4,
  LICENCE: 5,
  BUSY: 6,
  SUPERSEDED: 7,
  POLICY: 8,
};
const ENDINGS: Partial<Record<SeatState, number>> = {
  [SeatState.EVICTED]: EXIT.EVICTED,
  [SeatState.LOST]: EXIT.LOST,
  [SeatState.SUPERSEDED]: EXIT.SUPERSEDED,
};

const say = (line: string): void => void process.stdout.write(`${line}\n`);
const complain = (line: string): void => void process.stderr.write(`${line}\n`);

export function describe(event: SeatEvent): string {
  switch (event.type) {
    case "evicted":
      return `evicted: ${event.reason} (by ${event.by})`;
    case "state":
      return event.state === SeatState.SUPERSEDED
        ? "state: superseded (another instance holds this session now; not reattaching)"
        : `state: ${event.state}`;
    case "licence-changed":
      return `licence changed: ${licenceLine(event.licence)}`;
    case "draining":
      return `daemon restarting: reattaching in about ${event.reattachAfter.toFixed(0)} s`;
    case "idle-warning":
      return `idle warning${event.withdrawn ? " withdrawn" : ""}: ${event.reason}`;
  }
}

export function licenceLine(lic: LicenceSummary__Output): string {
  const name = (value: string, prefix: string): string => value.replace(prefix, "").toLowerCase();
  let status = name(lic.status, "LICENCE_STATUS_");
  if (lic.status === "LICENCE_STATUS_GRACE") {
    status = `in grace (${lic.grace_days_left} days of grace left to renew)`;
  }
  const seats = lic.seat_cap === undefined ? "unlimited seats" : `${lic.seat_cap} seats`;
  return `${name(lic.edition, "EDITION_")}/${name(lic.mode, "MODE_")}, ${status}, ${seats}`;
}

/** The sessions as a table, an IP column only when the daemon disclosed addresses. */
export function sessionsTable(sessions: readonly SessionInfo[], unlisted = 0): string {
  if (sessions.length === 0) return "";
  const withIp = sessions.some((s) => s.ip);
  const rows = [["ID", "USER", "NAME", "COMPUTER", ...(withIp ? ["IP"] : []), "STARTED (UTC)", "DURATION"]];
  for (const s of sessions) {
    const whole = Math.floor(s.durationSeconds);
    const two = (n: number): string => String(n).padStart(2, "0");
    rows.push([
      s.id,
      s.userCode,
      s.userName,
      s.hostname,
      ...(withIp ? [s.ip] : []),
      s.startedAt ? s.startedAt.toISOString().slice(0, 19).replace("T", " ") : "",
      `${two(Math.floor(whole / 60))} m ${two(whole % 60)} s`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
  if (unlisted) lines.push(`and ${unlisted} more`);
  return lines.join("\n");
}

export function describeRefusal(error: SeatError): [number, string] {
  if (error instanceof DaemonUnavailable) return [EXIT.UNREACHABLE, `seat: ${error.message}`];
  if (error instanceof LicenceInvalid) return [EXIT.LICENCE, `seat: ${error.message}`];
  if (error instanceof ServerBusy) {
    return [EXIT.BUSY, `seat: the seat server refused for now: ${error.message}`];
  }
  if (error instanceof PolicyRefused) {
    const group = error.group ? ` of group ${error.group}` : "";
    return [EXIT.POLICY, `seat: refused by the seat policy (rule ${error.rule}${group}): ${error.message}`];
  }
  if (error instanceof InvalidRequest && error.field) {
    return [EXIT.FULL, `seat: the request was refused (${error.field}): ${error.message}`];
  }
  return [EXIT.FULL, `seat: ${error.message}`];
}

async function status(target: string, timeout: number): Promise<number> {
  const client = new SeatClient(target, { timeout });
  try {
    const answer = await client.licence();
    const lic = answer.licence;
    say(`seat server ${target}: reachable`);
    if (lic) say(`licence: ${licenceLine(lic)}`);
    say(`seats in use: ${answer.in_use} of ${lic?.seat_cap ?? "unlimited"}`);
    return EXIT.OK;
  } catch (error) {
    if (!(error instanceof SeatError)) throw error;
    complain(`seat: ${error.message}`);
    return error instanceof DaemonUnavailable ? EXIT.UNREACHABLE : EXIT.FULL;
  } finally {
    await client.close();
  }
}

interface HoldArgs {
  target: string;
  user: string;
  name: string;
  wait?: number;
  evict?: string;
  reason: string;
  timeout: number;
  reportIdle: boolean;
}

async function hold(args: HoldArgs): Promise<number> {
  const client = new SeatClient(args.target, { timeout: args.timeout });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let seat: Seat;
  try {
    seat = await client.acquire({
      userCode: args.user,
      userName: args.name,
      evictSession: args.evict,
      reason: args.reason,
      wait: args.wait,
      signal: stop.signal,
      onEvent: (event) => say(describe(event)),
      onQueued: (position) => say(`waiting for a seat: position ${position}`),
    });
  } catch (error) {
    await client.close();
    if (error instanceof SeatsExhausted) {
      say(error.message);
      const table = sessionsTable(error.sessions, error.unlisted);
      if (table) say(table);
      if (error.orderUrl) say(`order one more connection: ${error.orderUrl}`);
      return EXIT.FULL;
    }
    if (!(error instanceof SeatError)) throw error;
    const [code, line] = describeRefusal(error);
    complain(line);
    return code;
  }
  say(`holding session ${seat.sessionId}`);
  if (args.reportIdle) {
    // Each line typed is activity; the time since the last one is reported as idle.
    seat.touch();
    createInterface({ input: process.stdin }).on("line", () => {
      seat.touch();
      say("activity reported");
    });
  }
  if (seat.licence?.status === "LICENCE_STATUS_GRACE") say(`licence: ${licenceLine(seat.licence)}`);
  const aborted = new Promise<void>((resolve) => stop.signal.addEventListener("abort", () => resolve()));
  await Promise.race([seat.ended, aborted]);
  const ending = ENDINGS[seat.state];
  if (ending !== undefined) {
    await client.close();
    return ending;
  }
  await seat.release();
  await client.close();
  say(`released session ${seat.sessionId}`);
  return EXIT.OK;
}

const USAGE = `usage: seat-node status --target HOST:PORT
       seat-node hold --target HOST:PORT --user CODE [--name NAME] [--wait SECONDS]
                      [--evict SESSION_ID --reason TEXT] [--report-idle]`;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      target: { type: "string" },
      user: { type: "string" },
      name: { type: "string", default: "" },
      wait: { type: "string" },
      evict: { type: "string" },
      reason: { type: "string", default: "" },
      timeout: { type: "string", default: "5" },
      "report-idle": { type: "boolean", default: false },
    },
  });
  const target = values.target;
  if (!target || (command !== "status" && command !== "hold") || (command === "hold" && !values.user)) {
    complain(USAGE);
    return 64;
  }
  const timeout = Number(values.timeout);
  if (command === "status") return status(target, timeout);
  return hold({
    target,
    user: values.user ?? "",
    name: values.name ?? "",
    wait: values.wait === undefined ? undefined : Number(values.wait),
    evict: values.evict,
    reason: values.reason ?? "",
    timeout,
    reportIdle: values["report-idle"] ?? false,
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      complain(`seat: ${error instanceof Error ? error.stack : String(error)}`);
      process.exit(70);
    },
  );
}
