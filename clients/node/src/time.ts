/** google.protobuf.Duration and Timestamp as proto-loader hands them over (seconds as a string). */
import type { Duration, Duration__Output } from "./gen/google/protobuf/Duration";
import type { Timestamp__Output } from "./gen/google/protobuf/Timestamp";

/** A Duration in seconds (0 when absent). */
export function seconds(d: Duration__Output | null | undefined): number {
  return d ? Number(d.seconds) + d.nanos / 1e9 : 0;
}

/** Seconds (a finite number from 0) as a Duration. */
export function duration(s: number): Duration {
  const whole = Math.floor(s);
  return { seconds: String(whole), nanos: Math.round((s - whole) * 1e9) };
}

/** A Timestamp as a Date (millisecond precision), or null when absent. */
export function date(t: Timestamp__Output | null | undefined): Date | null {
  return t ? new Date(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6)) : null;
}

/** The monotonic clock every deadline uses, in seconds; tests pass their own. */
export interface Clock {
  monotonic(): number;
}

export const systemClock: Clock = { monotonic: () => performance.now() / 1000 };
