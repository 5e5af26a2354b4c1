// Measures how soon a held seat reattaches after a daemon outage, with this library's channel
// settings and with grpc-js's defaults side by side (docs/integrating.md quotes the figures).
//   node scripts/outage.mjs HOST:PORT     (after `npm run build`)
// then stop the daemon (kill -9), start it again on the same address after the outage you
// want to measure, and read the seconds printed from each seat's JEOPARDY to its ACTIVE.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const { SeatClient, CHANNEL_OPTIONS } = require("../dist/src/index.js");
const target = process.argv[2];
const at = () => new Date().toISOString().slice(11, 23);

for (const [name, channelOptions] of [["library settings", CHANNEL_OPTIONS], ["grpc-js defaults", {}]]) {
  const client = new SeatClient(target, { channelOptions });
  const seat = await client.acquire({ userCode: name.slice(0, 8).toUpperCase().replace(" ", "") });
  let lostAt = 0;
  seat.addListener((event) => {
    if (event.type !== "state") return;
    if (event.state === "jeopardy") lostAt = Date.now();
    const since = lostAt && event.state === "active" ? ` (${((Date.now() - lostAt) / 1000).toFixed(1)} s after jeopardy)` : "";
    console.log(`${at()} ${name}: session ${seat.sessionId} ${event.state}${since}`);
  });
}
console.log(`${at()} both seats held`);
