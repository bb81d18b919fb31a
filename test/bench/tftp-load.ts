/**
 * Bench TFTP load client, run in its own process: `clients` loops, each reading `file` again and
 * again for `seconds` (and at most `maxTransfers` each). Prints one JSON line: transfers, bytes,
 * MiB/s, and the median and p99 transfer time.
 * Usage: tsx test/bench/tftp-load.ts HOST PORT FILE CLIENTS SECONDS BLKSIZE
 */
import { tftpGet } from "../../server/simulate/tftp-client.js";

const [host, port, file, clients, seconds, blksize] = process.argv.slice(2);
const until = performance.now() + Number(seconds) * 1000;
const maxTransfers = 100_000;
const times: number[] = [];
let bytes = 0;
let failures = 0;

// Each client speaks from its own loopback address, as each machine of a site has its own: a
// server may cap transfers per address.
async function loop(k: number) {
  for (let i = 0; i < maxTransfers && performance.now() < until; i++) {
    const started = performance.now();
    try {
      const r = await tftpGet(host!, Number(port), file!, {
        blksize: Number(blksize),
        timeoutMs: 1000,
        retries: 5,
        localAddress: `127.20.${k >> 8}.${(k & 255) + 1}`,
      });
      bytes += r.bytes;
      times.push(performance.now() - started);
    } catch {
      failures++;
    }
  }
}

const started = performance.now();
// Transfers still running 20 s after the end are counted as failed, not waited for: the run is bounded.
let timer: NodeJS.Timeout | undefined;
const overtime = new Promise<void>((r) => (timer = setTimeout(r, Number(seconds) * 1000 + 20_000)));
const loops = Array.from({ length: Number(clients) }, (_, k) => loop(k));
await Promise.race([Promise.all(loops), overtime]);
clearTimeout(timer);
const elapsed = (performance.now() - started) / 1000;
times.sort((a, b) => a - b);
const at = (p: number) => times[Math.min(times.length - 1, Math.ceil((p / 100) * times.length) - 1)] ?? 0;
process.stdout.write(
  `${JSON.stringify({ transfers: times.length, failures, bytes, seconds: elapsed, mibps: bytes / 1048576 / elapsed, p50_ms: at(50), p99_ms: at(99) })}\n`,
);
process.exit(0);
