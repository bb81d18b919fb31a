/**
 * Bench baseline: bare Hono with one route doing one SQLite read (a statement prepared once) and
 * one Ed25519 JWT sign (jose), the least a user-data answer with a fresh bootstrap token needs.
 * Usage: tsx test/bench/baseline-sqlite-jwt.ts PORT
 */
import { serve } from "@hono/node-server";
import Database from "better-sqlite3";
import { Hono } from "hono";
import { generateKeyPair, SignJWT } from "jose";
import { benchMac } from "./macs.js";

const port = Number(process.argv[2]);
const db = new Database(":memory:");
db.exec("create table machines (id integer primary key, mac text not null unique, cluster text not null, state text not null)");
const insert = db.prepare("insert into machines (mac, cluster, state) values (?, 'default', 'discovered')");
db.transaction(() => {
  for (let i = 0; i < 10_000; i++) insert.run(benchMac(i));
})();
const byMac = db.prepare("select id, mac, cluster, state from machines where mac = ?");
const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });

const app = new Hono().get("/cloud-init/:mac/user-data", async (c) => {
  const row = byMac.get(c.req.param("mac")) as { mac: string; cluster: string } | undefined;
  if (!row) return c.text("unknown", 404);
  const token = await new SignJWT({ cluster: row.cluster })
    .setProtectedHeader({ alg: "EdDSA", typ: "edgejoin-bootstrap+jwt", kid: "bench" })
    .setIssuer("http://127.0.0.1")
    .setAudience("edgejoin:enroll")
    .setSubject(row.mac)
    .setJti(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(privateKey);
  return c.text(`#cloud-config\nbootstrap_token: ${token}\n`);
});

serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => process.stdout.write("listening\n"));
