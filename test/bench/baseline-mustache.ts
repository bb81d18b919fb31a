/**
 * Bench baseline: bare Hono with one mustache route rendering edgejoin's own install.ipxe
 * template per request (no database, no validation). What `/boot.ipxe` is measured against.
 * Usage: tsx test/bench/baseline-mustache.ts PORT
 */
import { readFileSync } from "node:fs";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import Mustache from "mustache";

const template = readFileSync(new URL("../../templates/ipxe/install.ipxe.mustache", import.meta.url), "utf8");
const port = Number(process.argv[2]);
// iPXE is not HTML: no escaping, as edgejoin renders it.
Mustache.escape = (s: string) => s;

const app = new Hono().get("/boot.ipxe", (c) => {
  const mac = c.req.query("mac") ?? "00:00:00:00:00:00";
  const body = Mustache.render(template, {
    machineLabel: mac,
    cluster: "default",
    kernelUrl: "http://127.0.0.1:8080/artifacts/ubuntu/casper/vmlinuz",
    initrds: [{ url: "http://127.0.0.1:8080/artifacts/ubuntu/casper/initrd", name: "initrd" }],
    kernelArgs: ["ip=dhcp", `ds=nocloud-net;s=http://127.0.0.1:8080/cloud-init/${mac}/`],
  });
  return c.body(body, 200, { "content-type": "text/plain; charset=utf-8" });
});

serve({ fetch: app.fetch, port, hostname: "127.0.0.1" }, () => process.stdout.write("listening\n"));
