/**
 * `SeatClient.acquire()` resolves to a `Seat` kept alive in the background: the shape of the
 * Python library's blocking and asyncio clients, on grpc-js's event loop.
 */
import * as grpc from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { hostname as osHostname } from "node:os";

import { SeatCore, granted, type IdleSource } from "./core";
import {
  AcquireCancelled,
  DaemonUnavailable,
  InvalidRequest,
  SeatError,
  fromStatus,
  isCallStatus,
  type CallStatus,
} from "./errors";
import { SeatState, type Listener, type SeatEvent } from "./events";
import type { AcquireRequest } from "./gen/seatd/v1/AcquireRequest";
import type { AcquireResponse__Output } from "./gen/seatd/v1/AcquireResponse";
import type { GetLicenceResponse__Output } from "./gen/seatd/v1/GetLicenceResponse";
import type { KeepaliveRequest } from "./gen/seatd/v1/KeepaliveRequest";
import type { KeepaliveResponse__Output } from "./gen/seatd/v1/KeepaliveResponse";
import type { LicenceSummary__Output } from "./gen/seatd/v1/LicenceSummary";
import type { SeatServiceClient } from "./gen/seatd/v1/SeatService";
import type { WaitForSeatResponse__Output } from "./gen/seatd/v1/WaitForSeatResponse";
import { Backoff } from "./lease";
import { v1 } from "./protos";
import { duration, systemClock, type Clock } from "./time";

/**
 * Channel settings that keep a client inside the daemon's graces. grpc-js's own reconnect
 * backoff grows to 120 s: after a 43 s outage a client could wait minutes to reconnect, past
 * the restart grace (30 s from the restart). Capped at 2 s, the channel is back within about
 * 2 s of the daemon (docs/integrating.md has the measured figures).
 */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 200,
  "grpc.max_reconnect_backoff_ms": 2_000,
  // Detect a dead connection within a keepalive interval or so; the daemon allows these pings.
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 1,
  // Each client owns its connection (and its backoff), as each workstation does.
  "grpc.use_local_subchannel_pool": 1,
};

/** The longest google.protobuf.Duration: 10,000 years. */
const MAX_DURATION = 315_576_000_000;

export interface ClientOptions {
  /** Sent with every Acquire, shown to the admin ("erp/4.2"). */
  clientVersion?: string;
  /** The workstation's name as the admin sees it (default: os.hostname()). */
  hostname?: string;
  credentials?: grpc.ChannelCredentials;
  /** Seconds an acquire may take, reconnects included (plus `wait`). */
  timeout?: number;
  clock?: Clock;
  backoff?: Backoff;
  /** Replaces CHANNEL_OPTIONS (measurements; an application keeps the defaults). */
  channelOptions?: grpc.ChannelOptions;
  /** Where a listener's exception is reported (it never reaches the library). */
  onListenerError?: (error: unknown) => void;
}

export interface AcquireOptions {
  userCode: string;
  userName?: string;
  /** Take this session's seat over at capacity (when the daemon's policy allows it). */
  evictSession?: string | number;
  /** Shown to the evicted user. */
  reason?: string;
  /** Seconds to wait in the queue at capacity instead of being refused. */
  wait?: number;
  onEvent?: Listener;
  /** Hears the queue position when the request joins the queue and at each change. */
  onQueued?: (position: number) => void;
  /** Aborting it stops the acquire (and leaves the queue) with AcquireCancelled. */
  signal?: AbortSignal;
  /** Called before each keepalive for the seconds the user has been idle (no key, no click),
   * or null; drives the daemon's idle reclaim. Without it, `seat.touch()` marks activity;
   * a seat that reports neither is never reclaimed for idleness. */
  idleSeconds?: IdleSource;
}

const sleep = (s: number): Promise<void> => new Promise((r) => setTimeout(r, s * 1000));

export class SeatClient {
  readonly stub: SeatServiceClient;
  readonly clock: Clock;
  readonly backoff: Backoff;
  readonly timeout: number;
  private readonly seats = new Set<Seat>();

  constructor(
    readonly target: string,
    readonly options: ClientOptions = {},
  ) {
    const credentials = options.credentials ?? grpc.credentials.createInsecure();
    this.stub = new v1.SeatService(target, credentials, options.channelOptions ?? CHANNEL_OPTIONS);
    this.clock = options.clock ?? systemClock;
    this.backoff = options.backoff ?? new Backoff();
    this.timeout = options.timeout ?? 10;
  }

  /**
   * Takes a seat. At capacity this rejects with SeatsExhausted (the sessions, the licence and
   * its order_url, retry_after), unless `wait` is given: then the request queues (first come,
   * first served, `onQueued` hearing each position) and resolves when a seat frees.
   * `evictSession` takes that session's seat over when the daemon's policy allows it.
   */
  async acquire(options: AcquireOptions): Promise<Seat> {
    const request = this.request(options);
    const deadline = this.clock.monotonic() + this.timeout + (options.wait ?? 0);
    for (let attempt = 0; ; attempt++) {
      if (options.signal?.aborted) throw new AcquireCancelled("the acquire was cancelled");
      const sentAt = this.clock.monotonic();
      const callDeadline = new Date(Date.now() + Math.max(0.1, deadline - sentAt) * 1000);
      let response: AcquireResponse__Output;
      try {
        response = await (options.wait
          ? this.waitForSeat(request, callDeadline, options)
          : this.unaryAcquire(request, callDeadline, options.signal));
      } catch (e) {
        if (options.signal?.aborted) throw new AcquireCancelled("the acquire was cancelled");
        if (!isCallStatus(e)) throw e;
        const error = fromStatus(e, this.target);
        const delay = this.backoff.delay(attempt);
        const retry = error instanceof DaemonUnavailable && this.clock.monotonic() + delay < deadline;
        if (!retry) throw error;
        await sleep(delay);
        continue;
      }
      const core = new SeatCore(
        granted(response),
        sentAt,
        this.backoff,
        this.target,
        options.idleSeconds ?? null,
      );
      const seat = new Seat(this, core, options.onEvent);
      this.seats.add(seat);
      seat.ended.then(() => this.seats.delete(seat), () => undefined);
      return seat;
    }
  }

  /** The licence in force and the seats in use. */
  licence(): Promise<GetLicenceResponse__Output> {
    const deadline = new Date(Date.now() + this.timeout * 1000);
    return new Promise((resolve, reject) => {
      this.stub.GetLicence({}, { deadline }, (error, response) => {
        if (error || !response) reject(error ? fromStatus(error, this.target) : noAnswer());
        else resolve(response);
      });
    });
  }

  /** Releases every seat still held through this client, then closes the channel. */
  async close(): Promise<void> {
    await Promise.all([...this.seats].map((seat) => seat.release()));
    this.stub.close();
  }

  /** Releases every seat and exits on SIGINT / SIGTERM (exit code 128 + signal number). */
  closeOnSignals(): void {
    for (const [signal, number] of [["SIGINT", 2], ["SIGTERM", 15]] as const) {
      process.once(signal, () => {
        void this.close().finally(() => process.exit(128 + number));
      });
    }
  }

  private request(options: AcquireOptions): AcquireRequest {
    const wait = options.wait ?? 0;
    // Checked only as far as a Duration can carry it; the daemon judges the bound.
    if (!(Number.isFinite(wait) && wait >= 0 && wait <= MAX_DURATION)) {
      throw new InvalidRequest(`wait: must be a number of seconds from 0, got ${wait}`);
    }
    return {
      user_code: options.userCode,
      user_name: options.userName ?? "",
      hostname: this.options.hostname ?? osHostname(),
      client_version: this.options.clientVersion || "seat-client-node/0.1.0",
      // One key per login, kept across retries: a retry after a lost reply is the same seat.
      idempotency_key: randomBytes(18).toString("base64url"),
      evict_session_id: String(options.evictSession ?? 0),
      evict_reason: options.reason ?? "",
      ...(wait ? { wait: duration(wait) } : {}),
    };
  }

  private unaryAcquire(
    request: AcquireRequest,
    deadline: Date,
    signal: AbortSignal | undefined,
  ): Promise<AcquireResponse__Output> {
    return new Promise((resolve, reject) => {
      const call = this.stub.Acquire(request, { deadline }, (error, response) => {
        signal?.removeEventListener("abort", cancel);
        if (error || !response) reject(error ?? noAnswer());
        else resolve(response);
      });
      const cancel = (): void => call.cancel();
      signal?.addEventListener("abort", cancel);
    });
  }

  /** WaitForSeat: Queued at each position change, then Granted; a refusal ends the call. */
  private waitForSeat(
    request: AcquireRequest,
    deadline: Date,
    options: AcquireOptions,
  ): Promise<AcquireResponse__Output> {
    return new Promise((resolve, reject) => {
      const call = this.stub.WaitForSeat({ acquire: request }, { deadline });
      const cancel = (): void => call.cancel();
      options.signal?.addEventListener("abort", cancel);
      let grant: AcquireResponse__Output | null = null;
      call.on("data", (update: WaitForSeatResponse__Output) => {
        if (update.event === "queued" && update.queued) options.onQueued?.(update.queued.position);
        if (update.event === "granted" && update.granted) grant = update.granted;
      });
      call.on("error", () => undefined); // the same end arrives as 'status'
      call.on("status", (status: grpc.StatusObject) => {
        options.signal?.removeEventListener("abort", cancel);
        if (grant) resolve(grant);
        else reject(status.code === grpc.status.OK ? noAnswer() : callError(status));
      });
    });
  }
}

/** A held seat. Renews itself in the background and reattaches after network loss or a
 * daemon restart; `release()` gives it back. */
export class Seat {
  readonly sessionId: string;
  /** Settles with the final state once the seat ends (evicted, lost, superseded, released). */
  readonly ended: Promise<SeatState>;
  private readonly listeners: Listener[] = [];
  private stopped = false;
  private call: grpc.ClientDuplexStream<KeepaliveRequest, KeepaliveResponse__Output> | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private retry: NodeJS.Timeout | null = null;
  private finish!: (state: SeatState) => void;

  constructor(
    readonly client: SeatClient,
    private readonly core: SeatCore,
    listener?: Listener,
  ) {
    this.sessionId = core.sessionId;
    if (listener) this.listeners.push(listener);
    this.ended = new Promise((resolve) => (this.finish = resolve));
    this.stream();
  }

  get state(): SeatState {
    return this.core.state;
  }

  get licence(): LicenceSummary__Output | null {
    return this.core.licence;
  }

  /** The seat's lease terms as the daemon granted them (seconds). */
  get terms(): SeatCore["terms"] {
    return this.core.terms;
  }

  addListener(listener: Listener): void {
    this.listeners.push(listener);
  }

  /** The user is active now (a key, a click): the next keepalive reports no idleness, and
   * withdraws an idle warning. */
  touch(): void {
    this.core.touch(this.client.clock.monotonic());
  }

  /** Gives the seat back. Safe to call more than once. */
  async release(timeout = 5): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopTimers();
    if (!this.core.ended) {
      const deadline = new Date(Date.now() + timeout * 1000);
      const request = { session_id: this.sessionId, lease_token: this.core.token };
      await new Promise<void>((resolve) => {
        this.client.stub.Release(request, { deadline }, (error) => {
          if (error) {
            console.warn(
              `seat ${this.sessionId}: release failed (${grpc.status[error.code]}); ` +
                `the daemon frees it within ${this.core.terms.reattachGrace} s`,
            );
          }
          resolve();
        });
      });
    }
    this.call?.cancel();
    this.emit(this.core.onReleased());
    this.finish(this.core.state);
  }

  // -- the keepalive stream ----------------------------------------------------------------

  private stream(): void {
    // Attach only once the channel is connected (it reconnects at its own capped backoff):
    // an attach sent to a channel still down fails at once and would wait out a second
    // backoff of the application's own, and one queued with waitForReady would count the
    // lease from when it was queued, not from when it went out.
    const deadline = Date.now() + this.core.terms.keepaliveInterval * 1000;
    this.client.stub.waitForReady(deadline, (notReady) => {
      const closed =
        this.client.stub.getChannel().getConnectivityState(false) ===
        grpc.connectivityState.SHUTDOWN;
      if (this.stopped || this.core.ended || closed) return;
      if (notReady) this.stream();
      else this.attach();
    });
  }

  private attach(): void {
    const attachSent = this.client.clock.monotonic();
    const call = this.client.stub.Keepalive();
    this.call = call;
    call.write(this.core.attach());
    call.on("data", (response: KeepaliveResponse__Output) => {
      if (response.event === "attached" && !this.pinger) this.startPings(call);
      this.emit(this.core.onResponse(response, attachSent));
    });
    call.on("error", () => undefined); // the same end arrives as 'status'
    call.on("status", (status: grpc.StatusObject) => this.streamEnded(status));
  }

  private startPings(call: NonNullable<Seat["call"]>): void {
    this.pinger = setInterval(() => {
      const { request, events } = this.core.ping(this.client.clock.monotonic());
      this.emit(events);
      call.write(request);
    }, this.core.terms.keepaliveInterval * 1000);
  }

  private streamEnded(status: grpc.StatusObject): void {
    this.stopTimers();
    if (this.stopped) return;
    this.emit(this.core.onStatus(status));
    if (this.core.ended) return;
    const { events, delay } = this.core.onStreamEnd();
    this.emit(events);
    this.retry = setTimeout(() => {
      this.retry = null;
      if (!this.stopped) this.stream();
    }, delay * 1000);
  }

  private stopTimers(): void {
    if (this.pinger) clearInterval(this.pinger);
    if (this.retry) clearTimeout(this.retry);
    this.pinger = this.retry = null;
  }

  private emit(events: SeatEvent[]): void {
    for (const event of events) {
      for (const listener of [...this.listeners]) {
        try {
          listener(event);
        } catch (error) {
          (this.client.options.onListenerError ?? console.error)(error);
        }
      }
    }
    if (this.core.ended) {
      this.stopTimers();
      this.finish(this.core.state);
    }
  }
}

function noAnswer(): SeatError {
  return new SeatError("the seat server ended the call without an answer or a refusal");
}

/** A status as the Error grpc-js would have rejected with. */
function callError(status: CallStatus): Error & CallStatus {
  return Object.assign(new Error(status.details), status);
}
