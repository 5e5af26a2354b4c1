/**
 * What a held seat decides, without I/O (the Python library's seatclient/core.py): the
 * driver (seat.ts) only moves messages and timers, and feeds this core what happened.
 */
import { status as Status } from "@grpc/grpc-js";

import { Evicted, LeaseLost, Superseded, detailOf, fromStatus, type CallStatus } from "./errors";
import { SeatState, TERMINAL, type SeatEvent } from "./events";
import type { AcquireResponse__Output } from "./gen/seatd/v1/AcquireResponse";
import type { KeepaliveRequest } from "./gen/seatd/v1/KeepaliveRequest";
import type { KeepaliveResponse__Output } from "./gen/seatd/v1/KeepaliveResponse";
import type { LicenceSummary__Output } from "./gen/seatd/v1/LicenceSummary";
import { Backoff, Lease, type Terms } from "./lease";
import { date, duration, seconds } from "./time";

/** The most idleness a ping reports (a year): the wire's Duration stays in range whatever the
 * application says. */
export const MAX_IDLE = 365 * 86400;

/** The application's idle time in seconds, or null when it reports none. */
export type IdleSource = () => number | null;

export interface Granted {
  sessionId: string;
  token: string;
  terms: Terms;
  licence: LicenceSummary__Output | null;
}

export function granted(response: AcquireResponse__Output): Granted {
  return {
    sessionId: response.session_id,
    token: response.lease_token,
    terms: {
      ttl: seconds(response.ttl),
      keepaliveInterval: seconds(response.keepalive_interval),
      reattachGrace: seconds(response.reattach_grace),
    },
    licence: response.licence,
  };
}

export class SeatCore {
  readonly sessionId: string;
  readonly token: string;
  readonly terms: Terms;
  licence: LicenceSummary__Output | null;
  readonly lease: Lease;
  private attempt = 0;
  private attachedOnce = false;
  private drainAfter: number | null = null;
  private activeAt: number | null = null;

  constructor(
    grant: Granted,
    sentAt: number,
    readonly backoff: Backoff,
    readonly target: string,
    readonly idleSeconds: IdleSource | null = null,
  ) {
    this.sessionId = grant.sessionId;
    this.token = grant.token;
    this.terms = grant.terms;
    this.licence = grant.licence;
    this.lease = new Lease(grant.terms, sentAt);
  }

  get state(): SeatState {
    return this.lease.state;
  }

  get ended(): boolean {
    return TERMINAL.has(this.lease.state);
  }

  // -- what to send ------------------------------------------------------------------------

  attach(): KeepaliveRequest {
    this.attachedOnce = false;
    return { attach: { session_id: this.sessionId, lease_token: this.token } };
  }

  ping(now: number): { request: KeepaliveRequest; events: SeatEvent[] } {
    const change = this.lease.check(now);
    const idle = this.idle(now);
    const seq = String(this.lease.pingSent(now));
    const request = {
      ping: idle === null ? { seq } : { seq, idle: duration(Math.min(idle, MAX_IDLE)) },
    };
    return { request, events: some(change) };
  }

  /** The user is active now: the next ping reports no idleness (withdrawing a warning). */
  touch(now: number): void {
    this.activeAt = now;
  }

  /** Seconds the user has been idle, from the application's callback or its last `touch`;
   * null when it reports neither (or the callback fails: a broken callback must not cost
   * the seat, and a seat that reports nothing is never reclaimed for idleness). */
  idle(now: number): number | null {
    if (this.idleSeconds) {
      let idle: number | null;
      try {
        idle = this.idleSeconds();
      } catch (error) {
        console.error(`seat ${this.sessionId}: the idleSeconds callback failed`, error);
        return null;
      }
      return idle === null || !Number.isFinite(idle) ? null : Math.max(0, idle);
    }
    return this.activeAt === null ? null : Math.max(0, now - this.activeAt);
  }

  // -- what happened -----------------------------------------------------------------------

  onResponse(response: KeepaliveResponse__Output, attachSent: number): SeatEvent[] {
    switch (response.event) {
      case "attached":
        this.attachedOnce = true;
        return some(this.lease.attached(attachSent));
      case "pong":
        return some(this.lease.acknowledged(Number(response.pong?.seq)));
      case "evicted": {
        const e = response.evicted;
        const event: SeatEvent = {
          type: "evicted",
          sessionId: e?.session_id ?? this.sessionId,
          reason: e?.reason ?? "",
          by: e?.by ?? "",
          at: date(e?.at),
        };
        return [event, ...some(this.lease.end(SeatState.EVICTED))];
      }
      case "draining": {
        this.drainAfter = seconds(response.draining?.reattach_after);
        return [{ type: "draining", reattachAfter: this.drainAfter }];
      }
      case "idle_warning": {
        const w = response.idle_warning;
        return [
          {
            type: "idle-warning",
            evictAt: date(w?.evict_at),
            reason: w?.reason ?? "",
            idle: seconds(w?.idle),
            withdrawn: w?.withdrawn ?? false,
          },
        ];
      }
      case "licence_changed": {
        const licence = response.licence_changed?.licence;
        if (!licence) return [];
        this.licence = licence;
        return [{ type: "licence-changed", licence }];
      }
      default:
        return [];
    }
  }

  /** The stream ended: with an error, the daemon's word on the lease or a network fault. */
  onStatus(status: CallStatus): SeatEvent[] {
    if (status.code === Status.OK || this.ended) return [];
    const error = fromStatus(status, this.target);
    if (error instanceof Evicted) {
      const ended = detailOf(status.metadata).ended;
      const event: SeatEvent = {
        type: "evicted",
        sessionId: this.sessionId,
        reason: error.evictReason,
        by: error.by,
        at: date(ended?.at),
      };
      return [event, ...some(this.lease.end(SeatState.EVICTED))];
    }
    if (error instanceof LeaseLost) return some(this.lease.end(SeatState.LOST));
    if (error instanceof Superseded) return some(this.lease.end(SeatState.SUPERSEDED));
    return [];
  }

  /** The stream is gone without the lease ending: jeopardy, and how long to wait (s). */
  onStreamEnd(): { events: SeatEvent[]; delay: number } {
    const events = some(this.lease.broken());
    this.attempt = this.attachedOnce ? 0 : this.attempt + 1;
    let delay: number;
    if (this.drainAfter !== null) {
      // The daemon is restarting: spread the reattach storm over the announced delay.
      delay = this.drainAfter * (0.5 + this.backoff.random());
      this.drainAfter = null;
    } else {
      // Never wait past half the reattach grace: the daemon keeps the seat that long only.
      delay = this.backoff.delay(this.attempt, this.terms.reattachGrace / 2);
    }
    return { events, delay };
  }

  onReleased(): SeatEvent[] {
    return some(this.lease.end(SeatState.RELEASED));
  }
}

function some(event: SeatEvent | null): SeatEvent[] {
  return event ? [event] : [];
}
