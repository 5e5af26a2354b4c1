/**
 * Test helper for tests/unit/test_node_error_contract.py: reads refusals as the daemon encodes
 * them (one JSON object a line: gRPC code, details, trailers with -bin values in base64) and
 * prints how this library decodes each (one JSON object a line).
 */
import { Metadata } from "@grpc/grpc-js";
import { createInterface } from "node:readline";

import { describeRefusal } from "../src/cli";
import { SeatError, SeatsExhausted, fromStatus } from "../src/errors";

interface Encoded {
  code: number;
  details: string;
  trailers: [string, string][];
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const encoded = JSON.parse(line) as Encoded;
  const metadata = new Metadata();
  for (const [key, value] of encoded.trailers) {
    if (key.endsWith("-bin")) metadata.add(key, Buffer.from(value, "base64"));
    else metadata.add(key, value);
  }
  const error: SeatError = fromStatus({ ...encoded, metadata }, "seats.lan:7117");
  const fields: Record<string, unknown> = { ...error };
  if (error instanceof SeatsExhausted) {
    fields.orderUrl = error.orderUrl;
    fields.sessions = error.sessions.map((s) => s.id);
  }
  const [exit, said] = describeRefusal(error);
  process.stdout.write(
    `${JSON.stringify({ name: error.name, message: error.message, exit, said, fields })}\n`,
  );
});
