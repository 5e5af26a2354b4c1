export { SeatClient, Seat, CHANNEL_OPTIONS } from "./client";
export type { AcquireOptions, ClientOptions } from "./client";
export * from "./contract";
export * from "./errors";
export * from "./events";
export { Backoff, Lease } from "./lease";
export type { Terms } from "./lease";
export { LOADER_OPTIONS, PROTO_DIR, v1 } from "./protos";
export * from "./time";
