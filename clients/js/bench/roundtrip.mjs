// Round trips through the client against a real `streamer dev` it starts:
// sequential and concurrent sync echo, and async report {seconds: 0}
// (request → ack → progress 100 → complete). Prints p50/p99 and rate.
//
//   node bench/roundtrip.mjs [requests=2000] [concurrency=32]
import { StreamerClient } from "../dist/index.js";
import { startDev } from "../test/dev.mjs";

const n = Number(process.argv[2] ?? 2000);
const conc = Number(process.argv[3] ?? 32);
const dev = await startDev(null, "--log-level", "error");
const client = new StreamerClient(dev.wsURL);
await client.connect();

function report(name, lat, wallMs) {
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(2);
  console.log(`${name.padEnd(34)} n=${lat.length} p50=${q(0.5)} ms p99=${q(0.99)} ms rate=${Math.round((lat.length / wallMs) * 1000)}/s`);
}

async function run(name, count, workers, fn) {
  for (let i = 0; i < 200; i++) await fn(); // warm up
  const lat = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: workers }, async () => {
    while (next++ < count) {
      const s = performance.now();
      await fn();
      lat.push(performance.now() - s);
    }
  }));
  report(name, lat, performance.now() - t0);
}

await run("echo, sequential", n, 1, () => client.request("echo", { text: "hi" }));
await run(`echo, ${conc} in flight`, n, conc, () => client.request("echo", { text: "hi" }));
await run("report {seconds:0}, sequential", Math.min(n, 500), 1, () => client.request("report", { seconds: 0 }));
client.close();
await dev.stop();
