/** The user-data GET /cloud-init/:mac/user-data serves (seed.happy.test.ts), checked by Debian's `cloud-init schema`. */
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "vitest";
import { clusters } from "../../db/schema.js";
import { makeTestApp, testConfig } from "../helpers/app.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { expectValidUserData } from "./cloud-init-tools.js";

const mac = "52:54:00:12:34:56";

async function userData(app: ReturnType<typeof makeTestApp>["app"]): Promise<string> {
  const res = await app.request(`/cloud-init/${mac}/user-data`);
  if (res.status !== 200) throw new Error(`GET /cloud-init/${mac}/user-data → ${res.status}: ${await res.text()}`);
  return res.text();
}

describe("GET /cloud-init/:mac/user-data → cloud-init's schema check accepts it", () => {
  it("ubuntu-autoinstall (the default, fetched twice), cloud-image with SSH keys, a cluster's own template", async () => {
    const autoinstall = makeTestApp();

    const cloudImage = makeTestApp();
    const cluster = cloudImage.db.select().from(clusters).get()!;
    cloudImage.db
      .update(clusters)
      .set({ installer: { ...cluster.installer, kind: "cloud-image", ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample admin@site"] } })
      .run();

    const dir = testTempDir("templates");
    cpSync(testConfig().templatesDir, dir, { recursive: true });
    writeFileSync(
      join(dir, "cloud-init/site.user-data.mustache"),
      "#cloud-config\nhostname: {{hostname}}\ntimezone: Europe/Berlin\nwrite_files:\n  - path: /var/lib/edgejoin-agent/bootstrap-token\n    permissions: '0600'\n    content: {{bootstrapToken}}\n",
    );
    const site = makeTestApp({ env: { EDGEJOIN_TEMPLATES_DIR: dir } });
    const siteCluster = site.db.select().from(clusters).get()!;
    site.db
      .update(clusters)
      .set({ userDataTemplate: "cloud-init/site.user-data.mustache", installer: { ...siteCluster.installer, kind: "cloud-image" } })
      .run();

    expectValidUserData(await userData(autoinstall.app), await userData(autoinstall.app), await userData(cloudImage.app), await userData(site.app));
  });
});
