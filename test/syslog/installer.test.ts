/**
 * Ubuntu's installer sends its events to edgejoin's syslog receiver: with EDGEJOIN_SYSLOG_PORT set,
 * the autoinstall user-data carries subiquity's rsyslog reporter pointed at edgejoin's address and
 * port (valid against Ubuntu's autoinstall schema); without it, no such reporter.
 */
import { readFileSync } from "node:fs";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { makeTestApp, testPublicUrl } from "../helpers/app.js";

const schema = JSON.parse(readFileSync(new URL("../fixtures/schemas/autoinstall-schema.json", import.meta.url), "utf8")) as object;
const mac = "52:54:00:5e:20:01";

async function autoinstallOf(env: Record<string, string>): Promise<Record<string, unknown>> {
  const { app } = makeTestApp({ env, transport: "http" });
  expect((await app.request(`/boot.ipxe?mac=${mac}`)).status).toBe(200);
  const res = await app.request(`/cloud-init/${mac}/user-data`);
  expect(res.status).toBe(200);
  return (parse(await res.text()) as { autoinstall: Record<string, unknown> }).autoinstall;
}

describe("the installer's syslog reporter", () => {
  it("EDGEJOIN_SYSLOG_PORT=5514 → reporting.syslog is rsyslog to @HOST:5514 beside the webhook; the schema accepts it", async () => {
    const autoinstall = await autoinstallOf({ EDGEJOIN_SYSLOG_PORT: "5514" });
    const reporting = autoinstall.reporting as Record<string, { type: string; destination?: string }>;
    expect(reporting.syslog).toEqual({ type: "rsyslog", destination: `@${new URL(testPublicUrl).hostname}:5514` });
    expect(reporting.edgejoin!.type).toBe("webhook");
    const validate = new Ajv({ strict: false }).compile(schema);
    expect(validate(autoinstall), JSON.stringify(validate.errors)).toBe(true);
  });

  it("no EDGEJOIN_SYSLOG_PORT → only the webhook reporter", async () => {
    const reporting = (await autoinstallOf({})).reporting as Record<string, unknown>;
    expect(Object.keys(reporting)).toEqual(["edgejoin"]);
  });
});
