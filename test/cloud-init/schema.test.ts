import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { clusters } from "../../db/schema.js";
import { toYaml } from "../../server/render/cloud-init.js";
import { makeTestApp } from "../helpers/app.js";
import { autoinstallSchema, cloudConfigSchemaKeys, cloudInitSchema } from "./cloud-init-tools.js";

const mac = "52:54:00:12:34:56";

async function userData(kind: "ubuntu-autoinstall" | "cloud-image", extra: Record<string, unknown> = {}): Promise<string> {
  const { app, db } = makeTestApp();
  const cluster = db.select().from(clusters).get()!;
  db.update(clusters)
    .set({ installer: { ...cluster.installer, kind, ...extra } })
    .run();
  const res = await app.request(`/cloud-init/${mac}/user-data`);
  expect(res.status).toBe(200);
  return res.text();
}

function expectValidCloudConfig(text: string): void {
  const result = cloudInitSchema(text);
  expect(result.output).toContain("Valid cloud-config");
  expect(result.ok).toBe(true);
  // `cloud-init schema` accepts unknown top-level keys: check ours against its schema JSON.
  const known = cloudConfigSchemaKeys();
  const doc = parse(text, { version: "1.1" }) as Record<string, unknown>;
  expect(Object.keys(doc).filter((k) => !known.has(k))).toEqual([]);
}

describe("rendered user-data against the tools that will read it", () => {
  const variants = {
    default: {},
    "password, keys and lvm": {
      password_hash: "$6$rounds=4096$salt$Zm9vYmFy",
      ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@site", "ssh-rsa AAAAB3Nza other"],
      admin_user: "ops",
      storage_layout: "lvm",
    },
  };

  for (const [name, extra] of Object.entries(variants)) {
    it(`ubuntu-autoinstall (${name}) → cloud-init schema valid, autoinstall valid against Ubuntu's schema, nested user-data valid`, async () => {
      const text = await userData("ubuntu-autoinstall", extra);
      expectValidCloudConfig(text);
      const autoinstall = (parse(text, { version: "1.1" }) as { autoinstall: Record<string, unknown> }).autoinstall;
      const schema = autoinstallSchema() as { properties: Record<string, unknown> };
      const validate = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);
      expect(validate(autoinstall), JSON.stringify(validate.errors)).toBe(true);
      // The installer drops unknown top-level keys with only a warning: none may be ours.
      expect(Object.keys(autoinstall).filter((k) => !(k in schema.properties))).toEqual([]);
      expect(autoinstall).not.toHaveProperty("interactive-sections");
      const nested = `#cloud-config\n${toYaml(autoinstall["user-data"])}`;
      expectValidCloudConfig(nested);
    });
  }

  it("cloud-image → cloud-init schema valid, only keys cloud-init knows", async () => {
    expectValidCloudConfig(await userData("cloud-image"));
    expectValidCloudConfig(await userData("cloud-image", variants["password, keys and lvm"]));
  });

  it("an inert user-data (rejected machine) → still a valid cloud-config", async () => {
    const { app, db } = makeTestApp();
    await app.request(`/cloud-init/${mac}/meta-data`);
    const { machines } = await import("../../db/schema.js");
    db.update(machines).set({ state: "rejected" }).run();
    const text = await (await app.request(`/cloud-init/${mac}/user-data`)).text();
    expect(text).toBe("#cloud-config\n{}\n");
    expectValidCloudConfig(text);
  });
});
