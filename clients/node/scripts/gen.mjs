// Copies the contract (proto/ at the repository's root) into this package and generates the
// TypeScript types of its messages and services with @grpc/proto-loader's own generator, so
// the types describe exactly the objects grpc-js hands over under the loader options below
// (src/protos.ts passes the same ones at run time). Nothing here is edited by hand.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const contract = join(here, "..", "..", "proto", "seatd", "v1");
const copied = join(here, "proto", "seatd", "v1");
const gen = join(here, "src", "gen");
const FILES = ["seat.proto", "types.proto"];

rmSync(join(here, "proto"), { recursive: true, force: true });
rmSync(gen, { recursive: true, force: true });
mkdirSync(copied, { recursive: true });
for (const file of FILES) cpSync(join(contract, file), join(copied, file));

const bin = join(here, "node_modules", ".bin", "proto-loader-gen-types");
const run = spawnSync(
  bin,
  [
    // The files first: --includeDirs is a list and would take them as directories.
    ...FILES.map((f) => `seatd/v1/${f}`),
    "--keepCase",
    "--longs=String",
    "--enums=String",
    "--defaults",
    "--oneofs",
    "--grpcLib=@grpc/grpc-js",
    `--outDir=${gen}`,
    "--includeComments",
    `--includeDirs=${join(here, "proto")}`,
  ],
  { stdio: "inherit" },
);
if (run.status !== 0) process.exit(run.status ?? 1);
