/**
 * One of several processes asking for configs on the same database file at once (run by
 * contention.test.ts): argv = database file, first machine id, last machine id.
 * Each machine asks until it gets its config, then reports k3s-started and ready.
 * Exits non-zero on any error (SQLITE_BUSY included); prints a JSON summary.
 */
import pino from "pino";
import { openDb } from "../../db/client.js";
import { makeDeps } from "../../server/app.js";
import { answerConfigRequest, answerNodeEvent } from "../../server/http/node.js";
import { testCaHash } from "./fixtures.js";
import { testCaCertPem, testConfig } from "../helpers/app.js";

const [file, firstText, lastText] = process.argv.slice(2);
const db = openDb(file!);
const deps = makeDeps({ db, config: testConfig(), logger: pino({ level: "silent" }), caCertPem: testCaCertPem });
const pending = new Set<number>();
for (let id = Number(firstText); id <= Number(lastText); id++) pending.add(id);

const roles: Record<string, number> = {};
const deadline = Date.now() + 40_000;
let asks = 0;
while (pending.size > 0) {
  if (Date.now() > deadline) throw new Error(`${pending.size} machines still waiting at the deadline`);
  for (const id of [...pending]) {
    asks++;
    const decision = answerConfigRequest(deps, { id });
    if (decision.kind === "wait") continue;
    const role = decision.body.role;
    roles[role] = (roles[role] ?? 0) + 1;
    answerNodeEvent(deps, { id }, { type: "k3s-started" });
    answerNodeEvent(deps, { id }, { type: "ready", caHash: role === "agent" ? null : testCaHash });
    pending.delete(id);
  }
  // Let the other process in between rounds, as separate agents would.
  await new Promise((r) => setTimeout(r, 1));
}
db.$client.close();
process.stdout.write(`${JSON.stringify({ roles, asks })}\n`);
