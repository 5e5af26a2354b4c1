/**
 * The client's own view of its lease: a pure state machine driven by the caller's clock
 * (the same rules as the Python library's seatclient/lease.py).
 *
 * The lease counts from when a renewal was *sent*, never from when its answer arrived, so
 * the client always believes its lease ends no later than the daemon does. It never declares
 * the seat LOST on its own: only the daemon can say so. While renewals fail it reports
 * JEOPARDY and keeps reattaching, with full-jitter backoff capped inside the reattach grace.
 */
import { SeatState, TERMINAL, type StateChangedEvent } from "./events";

export interface Terms {
  ttl: number;
  keepaliveInterval: number;
  reattachGrace: number;
}

/** Full-jitter exponential backoff: attempt n waits uniform(0, min(cap, base * 2**n)). */
export class Backoff {
  constructor(
    readonly base = 0.2,
    readonly cap = 5.0,
    readonly random: () => number = Math.random,
  ) {}

  ceiling(attempt: number, limit = Infinity): number {
    return Math.min(this.cap, limit, this.base * 2 ** Math.min(attempt, 30));
  }

  /** The delay before attempt `attempt`, never past `limit` seconds. */
  delay(attempt: number, limit = Infinity): number {
    return this.random() * this.ceiling(attempt, limit);
  }
}

export class Lease {
  state = SeatState.ACTIVE;
  renewedSentAt: number;
  assuredUntil: number;
  private readonly sent = new Map<number, number>();
  private seq = 0;

  constructor(
    readonly terms: Terms,
    grantedSentAt: number,
  ) {
    this.renewedSentAt = grantedSentAt;
    this.assuredUntil = grantedSentAt + terms.ttl;
  }

  /** Records a renewal sent now; returns its sequence number. */
  pingSent(now: number): number {
    this.seq += 1;
    this.sent.set(this.seq, now);
    if (this.sent.size > 64) this.sent.delete(Math.min(...this.sent.keys()));
    return this.seq;
  }

  /** The daemon accepted an attach sent at `sentAt`: a renewal. */
  attached(sentAt: number): StateChangedEvent | null {
    return this.renewed(sentAt);
  }

  /** The daemon answered ping `seq`. */
  acknowledged(seq: number): StateChangedEvent | null {
    const sentAt = this.sent.get(seq);
    if (sentAt === undefined) return null;
    this.sent.delete(seq);
    return this.renewed(sentAt);
  }

  /** Called before each ping: an overdue renewal puts the seat in jeopardy. */
  check(now: number): StateChangedEvent | null {
    const overdue = now - this.renewedSentAt > this.terms.keepaliveInterval * 1.5;
    return this.state === SeatState.ACTIVE && overdue ? this.move(SeatState.JEOPARDY) : null;
  }

  /** The stream broke: the daemon now keeps the seat only for the reattach grace. */
  broken(): StateChangedEvent | null {
    if (TERMINAL.has(this.state)) return null;
    this.assuredUntil = Math.min(this.assuredUntil, this.renewedSentAt + this.terms.reattachGrace);
    this.sent.clear();
    return this.move(SeatState.JEOPARDY);
  }

  /** The daemon ended the lease, or the application released it. */
  end(state: SeatState): StateChangedEvent | null {
    return TERMINAL.has(this.state) ? null : this.move(state);
  }

  private renewed(sentAt: number): StateChangedEvent | null {
    if (TERMINAL.has(this.state)) return null;
    if (sentAt >= this.renewedSentAt) {
      this.renewedSentAt = sentAt;
      this.assuredUntil = Math.max(this.assuredUntil, sentAt + this.terms.ttl);
    }
    return this.move(SeatState.ACTIVE);
  }

  private move(state: SeatState): StateChangedEvent | null {
    if (state === this.state) return null;
    const old = this.state;
    this.state = state;
    return { type: "state", old, state };
  }
}
