/**
 * The server's WAL checkpoints, off the event loop. SQLite's automatic checkpoint runs inside the
 * commit that crosses 1,000 WAL pages, on the thread that committed: under a boot storm that is
 * the event loop, stalled while the pages are copied and synced (the `/boot.ipxe` p99 spikes in
 * the bench). Here the server's connection stops checkpointing and a worker thread, with its own
 * connection to the same file, runs a PASSIVE checkpoint every `intervalMs`: it never waits for
 * or blocks the server's readers and writer, and a writer restarts the WAL from its start once a
 * checkpoint has caught up. Should the worker fail, the server's connection checkpoints itself again.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type { Db } from "./client.js";

/** SQLite's own default, restored when the worker is gone. */
const autoCheckpointPages = 1000;

// Plain CommonJS run by the worker: no TypeScript loader needed in the thread.
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma("busy_timeout = 1000");
const timer = setInterval(() => {
  try {
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (err) {
    // A busy database is retried next round; anything else ends the worker and the server takes over.
    if (!/busy|locked/i.test(String(err && err.message))) throw err;
  }
}, workerData.intervalMs);
parentPort.on("message", () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export type Checkpointer = { stop(): Promise<void> };

export function startCheckpointer(db: Db, file: string, opts: { intervalMs?: number; onError?: (err: Error) => void } = {}): Checkpointer {
  const sqlite = db.$client;
  const driver = createRequire(import.meta.url).resolve("better-sqlite3");
  const worker = new Worker(workerSource, { eval: true, workerData: { file, driver, intervalMs: opts.intervalMs ?? 250 } });
  sqlite.pragma("wal_autocheckpoint = 0");
  let stopping = false;
  const takeOver = () => {
    if (sqlite.open) sqlite.pragma(`wal_autocheckpoint = ${autoCheckpointPages}`);
  };
  worker.on("error", (err) => {
    takeOver();
    opts.onError?.(err);
  });
  const exited = new Promise<void>((resolve) =>
    worker.once("exit", () => {
      if (!stopping) takeOver();
      resolve();
    }),
  );
  // The worker alone must not keep the process alive.
  worker.unref();
  return {
    async stop() {
      stopping = true;
      worker.postMessage("stop");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000).unref())]);
      await worker.terminate();
      takeOver();
    },
  };
}
