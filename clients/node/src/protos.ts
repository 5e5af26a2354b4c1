/**
 * The contract, loaded at run time by @grpc/proto-loader with the options its type generator
 * was given (scripts/gen.mjs): the generated types in ./gen describe exactly these objects.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";

import type { ProtoGrpcType } from "./gen/seat";

/** Where `npm run gen` copied proto/seatd/v1 (shipped with the package). */
export const PROTO_DIR = join(__dirname, "..", "..", "proto");

export const LOADER_OPTIONS: protoLoader.Options = {
  // Field names as in the .proto files (session_id, not sessionId): what the docs say.
  keepCase: true,
  // uint64 ids as decimal strings: a JavaScript number loses precision past 2**53.
  longs: String,
  enums: String,
  // Absent scalars read as their zero value, as in every other proto3 language; a proto3
  // `optional` field stays absent when unset (seat_cap: undefined means "no cap").
  defaults: true,
  // `event: "evicted"` names the member of a oneof that is set.
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

const definition = protoLoader.loadSync(["seatd/v1/seat.proto"], LOADER_OPTIONS);

/** seatd.v1: the SeatService client constructor and every message's (de)serializer. */
export const v1 = (grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType).seatd.v1;
