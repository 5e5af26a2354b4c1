/** What a held seat reports to the application. */
import type { LicenceSummary__Output } from "./gen/seatd/v1/LicenceSummary";
import type { Session__Output } from "./gen/seatd/v1/Session";
import { date, seconds } from "./time";

export enum SeatState {
  ACTIVE = "active",
  /** Renewals are failing; the seat may still be held. The library keeps reattaching. */
  JEOPARDY = "jeopardy",
  /** The daemon says the lease is gone (expired, released elsewhere, unknown). */
  LOST = "lost",
  /** Someone ended the session on purpose. */
  EVICTED = "evicted",
  /** Another instance attached this session and keeps it alive now: this one stops,
   * without releasing the seat, and does not reattach. */
  SUPERSEDED = "superseded",
  RELEASED = "released",
}

export const TERMINAL: ReadonlySet<SeatState> = new Set([
  SeatState.LOST,
  SeatState.EVICTED,
  SeatState.SUPERSEDED,
  SeatState.RELEASED,
]);

/** The session was ended by someone: why, by whom (an admin, or "user@host" of a takeover). */
export interface EvictedEvent {
  type: "evicted";
  sessionId: string;
  reason: string;
  by: string;
  at: Date | null;
}

/** The seat moved to another state (JEOPARDY, ACTIVE again, or one of its endings). */
export interface StateChangedEvent {
  type: "state";
  old: SeatState;
  state: SeatState;
}

export interface LicenceChangedEvent {
  type: "licence-changed";
  licence: LicenceSummary__Output;
}

/** The daemon is shutting down: the seat is kept; the library reattaches after the delay. */
export interface DrainingEvent {
  type: "draining";
  reattachAfter: number;
}

/** The daemon's seat policy will take this idle seat back at `evictAt` unless the user is
 * active before then (`seat.touch()`); `withdrawn`: activity came in time, or nobody waits
 * any more, and the seat stays. */
export interface IdleWarningEvent {
  type: "idle-warning";
  evictAt: Date | null;
  reason: string;
  /** Seconds the session had been idle when warned. */
  idle: number;
  withdrawn: boolean;
}

export type SeatEvent =
  | EvictedEvent
  | StateChangedEvent
  | LicenceChangedEvent
  | DrainingEvent
  | IdleWarningEvent;

export type Listener = (event: SeatEvent) => void;

/** A session as listed in a refusal at capacity. */
export interface SessionInfo {
  id: string;
  userCode: string;
  userName: string;
  hostname: string;
  ip: string;
  clientVersion: string;
  startedAt: Date | null;
  lastSeenAt: Date | null;
  durationSeconds: number;
  attached: boolean;
}

export function sessionInfo(s: Session__Output): SessionInfo {
  return {
    id: s.id,
    userCode: s.user_code,
    userName: s.user_name,
    hostname: s.hostname,
    ip: s.ip,
    clientVersion: s.client_version,
    startedAt: date(s.started_at),
    lastSeenAt: date(s.last_seen_at),
    durationSeconds: seconds(s.duration),
    attached: s.attached,
  };
}
