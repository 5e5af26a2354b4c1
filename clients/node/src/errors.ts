/**
 * Typed errors, each with a message a person can read: every reason the daemon sends
 * (contract.Reason) decodes into its own class through one table, DECODERS, as in the
 * Python library's seatclient/errors.py.
 */
import { Metadata, status as Status, type StatusObject } from "@grpc/grpc-js";

import { DETAIL_KEY, LICENCE_PREFIX, Meta, Reason } from "./contract";
import { sessionInfo, type SessionInfo } from "./events";
import type { ErrorDetail__Output } from "./gen/seatd/v1/ErrorDetail";
import type { LicenceSummary__Output } from "./gen/seatd/v1/LicenceSummary";
import { v1 } from "./protos";
import { seconds } from "./time";

/** Base of every error the library raises. `code` is the daemon's stable reason
 * (contract.Reason), `metadata` its key/value details (contract.Meta). */
export class SeatError extends Error {
  static readonly reason: string = "SEAT_ERROR";
  readonly code: string;
  readonly metadata: Record<string, string>;

  constructor(message: string, options: { code?: string; metadata?: Record<string, string> } = {}) {
    super(message);
    this.name = new.target.name;
    this.code = options.code || (new.target as typeof SeatError).reason;
    this.metadata = { ...options.metadata };
  }
}

/**
 * Every connection the licence allows is in use. Three ways out: try again later
 * (`retryAfter`, or acquire with `wait`), order one more connection (`orderUrl`, `licence`),
 * or disconnect one of `sessions` (acquire with `evictSession` and a `reason`).
 */
export class SeatsExhausted extends SeatError {
  static override readonly reason: string = Reason.SEATS_EXHAUSTED;

  constructor(
    message: string,
    readonly cap: number | undefined,
    readonly inUse: number,
    readonly sessions: readonly SessionInfo[],
    readonly retryAfter: number,
    readonly queuePosition: number,
    readonly licence: LicenceSummary__Output | null,
  ) {
    super(message);
  }

  /** Where a person orders one more connection ("" when the licence names none). */
  get orderUrl(): string {
    return this.licence?.order_url ?? "";
  }

  /** Sessions in use that the refusal does not list. */
  get unlisted(): number {
    return Math.max(0, this.inUse - this.sessions.length);
  }
}

/** The session was disconnected on purpose: `evictReason` and `by` say why and who. */
export class Evicted extends SeatError {
  static override readonly reason: string = Reason.SESSION_EVICTED;

  constructor(
    message: string,
    readonly evictReason: string,
    readonly by: string,
  ) {
    super(message);
  }
}

/** The daemon no longer holds this session's seat (expired, released, unknown, or the lease
 * token does not match). */
export class LeaseLost extends SeatError {
  static override readonly reason: string = "LEASE_LOST";
}

/** Another keepalive stream attached to this session: this one stops, it does not fight. */
export class Superseded extends SeatError {
  static override readonly reason: string = Reason.STREAM_SUPERSEDED;
}

/** The seat server cannot be reached, or cannot take the change now; later may work. */
export class DaemonUnavailable extends SeatError {
  static override readonly reason: string = Reason.UNAVAILABLE;
}

/** Cluster mode: the instance asked is not the leader; `leader` is where it is ("" if unknown). */
export class NotLeader extends DaemonUnavailable {
  static override readonly reason: string = Reason.NOT_LEADER;

  constructor(
    message: string,
    readonly leader = "",
    readonly leaderName = "",
  ) {
    super(message, { code: Reason.NOT_LEADER });
  }
}

/** The daemon refused this call for now, to protect itself; retry after `retryAfter` s. */
export class ServerBusy extends SeatError {
  static override readonly reason: string = "SERVER_BUSY";

  constructor(
    message: string,
    readonly retryAfter = 0,
    code = "",
  ) {
    super(message, { code });
  }
}

export class RateLimited extends ServerBusy {
  static override readonly reason: string = Reason.RATE_LIMITED;
}

export class QueueFull extends ServerBusy {
  static override readonly reason: string = Reason.QUEUE_FULL;
}

/** Another bound on what one caller may make the daemon hold (`code` says which). */
export class LimitExceeded extends ServerBusy {
  static override readonly reason: string = "LIMIT_EXCEEDED";
}

export class StoreFull extends ServerBusy {
  static override readonly reason: string = Reason.STORE_FULL;
}

/** The licence does not allow new connections (expired past its grace, transferred). */
export class LicenceInvalid extends SeatError {
  static override readonly reason: string = "LICENCE_INVALID";
}

/** The daemon's takeover policy does not allow disconnecting that session. */
export class TakeoverDenied extends SeatError {
  static override readonly reason: string = Reason.TAKEOVER_DENIED;

  constructor(
    message: string,
    readonly policy: string,
  ) {
    super(message);
  }
}

/** The daemon refused a malformed request (a bug in the caller); `field` names the field. */
export class InvalidRequest extends SeatError {
  static override readonly reason: string = Reason.INVALID_ARGUMENT;

  constructor(
    message: string,
    readonly field = "",
  ) {
    super(message);
  }
}

/** The session chosen for a takeover is no longer there (it ended while the user chose it):
 * no seat was taken; list the sessions again, or retry (a seat may be free now). */
export class TakeoverTargetGone extends SeatError {
  static override readonly reason: string = Reason.TAKEOVER_TARGET_GONE;

  constructor(
    message: string,
    readonly sessionId: string,
  ) {
    super(message, { metadata: { [Meta.SESSION_ID]: sessionId } });
  }
}

/** The site's seat policy refused the seat: `rule` (max, reserve, max_per_user, exclude) and
 * `group` say which; `code` is POLICY_MAX, POLICY_RESERVED, POLICY_PER_USER or
 * POLICY_EXCLUDED. Except for an excluded group, waiting may get a seat. */
export class PolicyRefused extends SeatError {
  static override readonly reason: string = "POLICY_REFUSED";

  constructor(
    message: string,
    code: string,
    readonly rule: string,
    readonly group: string,
  ) {
    super(message, { code, metadata: { [Meta.POLICY]: rule, [Meta.GROUP]: group } });
  }
}

/** An administration refusal (PERMISSION_DENIED, UNAUTHENTICATED, ...): `code` says which. */
export class AdminRefused extends SeatError {
  static override readonly reason: string = "ADMIN_REFUSED";
}

/** acquire() was cancelled through its AbortSignal. */
export class AcquireCancelled extends SeatError {
  static override readonly reason: string = "ACQUIRE_CANCELLED";
}

/** The end of a call as grpc-js reports it (a ServiceError or a StatusObject). */
export type CallStatus = Pick<StatusObject, "code" | "details" | "metadata">;

/** The ErrorDetail a refusal carries in its `seatd-error-bin` trailer (zero values if none). */
export function detailOf(metadata: Metadata | undefined): ErrorDetail__Output {
  const [value] = metadata?.get(DETAIL_KEY) ?? [];
  return v1.ErrorDetail.deserialize(Buffer.isBuffer(value) ? value : Buffer.alloc(0));
}

type Decoder = (message: string, detail: ErrorDetail__Output, target: string) => SeatError;

const exhausted: Decoder = (m, d) =>
  new SeatsExhausted(
    m,
    d.seat_cap,
    d.in_use,
    d.sessions.map(sessionInfo),
    seconds(d.retry_after),
    d.queue_position,
    d.licence,
  );
const lost: Decoder = (m, d) => new LeaseLost(m, { code: d.reason, metadata: d.metadata });
const admin: Decoder = (m, d) => new AdminRefused(m, { code: d.reason, metadata: d.metadata });
const unavailable: Decoder = (m, d, t) =>
  new DaemonUnavailable(`the seat server at ${t}: ${m}`, { code: d.reason });
const policy: Decoder = (m, d) =>
  new PolicyRefused(m, d.reason, d.metadata[Meta.POLICY] ?? "", d.metadata[Meta.GROUP] ?? "");
const busy =
  (Kind: typeof ServerBusy): Decoder =>
  (m, d) => {
    const wait = seconds(d.retry_after);
    const hint = wait >= 1 && !m.includes("retry in") ? `; retry in ${wait.toFixed(0)} s` : "";
    return new Kind(`${m}${hint}`, wait, d.reason);
  };

/** The daemon's reason -> the library's error. One entry per contract.Reason. */
export const DECODERS: Record<Reason, Decoder> = {
  INVALID_ARGUMENT: (m, d) => new InvalidRequest(m, d.metadata[Meta.FIELD] ?? ""),
  SEATS_EXHAUSTED: exhausted,
  SESSION_NOT_FOUND: lost,
  SESSION_RELEASED: lost,
  SESSION_EXPIRED: lost,
  SESSION_EVICTED: (m, d) => new Evicted(m, d.ended?.reason ?? "", d.ended?.by ?? ""),
  TAKEOVER_TARGET_GONE: (m, d) => new TakeoverTargetGone(m, d.metadata[Meta.SESSION_ID] ?? "0"),
  INVALID_LEASE_TOKEN: lost,
  STREAM_SUPERSEDED: (m) => new Superseded(m),
  TAKEOVER_DENIED: (m, d) => new TakeoverDenied(m, d.metadata[Meta.POLICY] ?? ""),
  UNAVAILABLE: unavailable,
  STORAGE_FAILED: unavailable,
  DRAINING: unavailable,
  CLOUD_SYNC_FAILED: admin,
  STORE_FULL: busy(StoreFull),
  RATE_LIMITED: busy(RateLimited),
  QUEUE_FULL: busy(QueueFull),
  PING_FLOOD: busy(LimitExceeded),
  KEEPALIVE_BACKLOG: busy(LimitExceeded),
  TOO_MANY_CALLS: busy(LimitExceeded),
  LICENCE_EXPIRED: (m, d) => new LicenceInvalid(m, { code: d.reason }),
  SEATS_NOT_PURCHASED: admin,
  PERMISSION_DENIED: admin,
  UNAUTHENTICATED: admin,
  RECORD_DAMAGED: admin,
  POLICY_MAX: policy,
  POLICY_PER_USER: policy,
  POLICY_RESERVED: policy,
  POLICY_EXCLUDED: policy,
  NOT_LEADER: (m, d, t) =>
    new NotLeader(
      `the seat server at ${t}: ${m}`,
      d.metadata[Meta.LEADER] ?? "",
      d.metadata[Meta.LEADER_NAME] ?? "",
    ),
};

function isReason(reason: string): reason is Reason {
  return Object.prototype.hasOwnProperty.call(DECODERS, reason);
}

/** Turns the end of a failed call into the library's typed error. */
export function fromStatus(status: CallStatus, target: string): SeatError {
  const detail = detailOf(status.metadata);
  const message = detail.message || status.details || Status[status.code] || "error";
  if (isReason(detail.reason)) return DECODERS[detail.reason](message, detail, target);
  if (detail.reason.startsWith(LICENCE_PREFIX)) {
    return new LicenceInvalid(message, { code: detail.reason });
  }
  // No reason we know: a newer daemon, or grpc itself (network, deadline), by status code.
  switch (status.code) {
    case Status.NOT_FOUND:
    case Status.UNAUTHENTICATED:
      return new LeaseLost(message, { code: detail.reason });
    case Status.INVALID_ARGUMENT:
      return new InvalidRequest(message);
    case Status.UNAVAILABLE:
    case Status.DEADLINE_EXCEEDED:
      return new DaemonUnavailable(`the seat server at ${target} cannot be reached: ${message}`, {
        code: detail.reason,
      });
    case Status.RESOURCE_EXHAUSTED:
      return new ServerBusy(message, seconds(detail.retry_after), detail.reason);
    default:
      return new SeatError(message, { code: detail.reason });
  }
}

/** A grpc-js call error (it carries code, details and the trailers). */
export function isCallStatus(e: unknown): e is CallStatus {
  return e instanceof Error && typeof (e as Partial<CallStatus>).code === "number";
}
