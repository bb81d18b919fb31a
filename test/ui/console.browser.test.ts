/**
 * The console in a real browser: Debian's chromium driven by playwright-core against a real
 * edgejoin process. Machines enroll while the page is open and appear as pending without a
 * reload; the test approves one and rejects another with the page's own buttons and sees both
 * change; a wrong token and a post without the CSRF token are refused. Screenshots at desktop
 * and phone width are kept in .test-output/ui/ for a person to look at.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { loopbackSettings, spawnServer, waitHealthy } from "../helpers/server-process.js";
import { testTempDir } from "../helpers/temp-dir.js";
import { enrollMachine } from "./machines.js";

const chromiumPath = "/usr/bin/chromium";
const outDir = fileURLToPath(new URL("../../.test-output/ui/", import.meta.url));
const adminToken = "console-browser-test-token-0123456789";

async function openBrowser(profile: string): Promise<BrowserContext> {
  if (!existsSync(chromiumPath)) throw new Error(`${chromiumPath} is missing: install the Debian package \`chromium\` (apt-get install chromium)`);
  // A persistent context is how playwright takes a --user-data-dir: a fresh one per run.
  return chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

const pendingRow = (page: Page, mac: string) => page.locator(`#pending-rows tr[data-mac="${mac}"]`);
const fleetRow = (page: Page, mac: string) => page.locator(`[data-region="all-machines"] tr[data-mac="${mac}"]`);

describe("the console in chromium", () => {
  it("sign in, machines appear as they enroll, approve one, reject one, CSRF and wrong token refused", { timeout: 120_000 }, async () => {
    mkdirSync(outDir, { recursive: true });
    const root = testTempDir("ui-browser");
    const run = spawnServer({ ...(await loopbackSettings(root)), EDGEJOIN_ADMIN_TOKEN: adminToken });
    await waitHealthy(run);
    const context = await openBrowser(join(root, "chromium-profile"));
    try {
      const page = context.pages()[0] ?? (await context.newPage());
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (m) => {
        // The refused sign-in (401) and the refused post (403) are logged by chromium as failed loads; those are expected.
        if (m.type() === "error" && !/status of (401|403)/.test(m.text())) errors.push(m.text());
      });

      // Without a session the console sends the browser to sign in; a wrong token is refused.
      await page.goto(`${run.url}/ui`);
      expect(new URL(page.url()).pathname).toBe("/ui/login");
      await page.getByLabel("Admin token").fill("not-the-admin-token-not-the-admin-token");
      const refused = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith("/ui/login") && r.request().method() === "POST"),
        page.getByRole("button", { name: "Sign in" }).click(),
      ]);
      expect(refused[0].status()).toBe(401);
      expect(await page.getByRole("alert").textContent()).toContain("not accepted");
      expect(page.url()).not.toContain(adminToken);

      await page.getByLabel("Admin token").fill(adminToken);
      await Promise.all([page.waitForURL(`${run.url}/ui`), page.getByRole("button", { name: "Sign in" }).click()]);
      expect(page.url()).not.toContain(adminToken);
      const cookie = (await context.cookies()).find((c) => c.name === "edgejoin_session")!;
      expect(cookie.httpOnly).toBe(true);
      expect(cookie.sameSite).toBe("Strict");
      expect(cookie.expires).toBeGreaterThan(Date.now() / 1000);

      // A marker on the window: if the page reloaded, it is gone.
      await page.evaluate(() => {
        (window as unknown as { marker: string }).marker = "no reload";
      });
      const macs = ["52:54:00:0c:00:01", "52:54:00:0c:00:02", "52:54:00:0c:00:03"];
      const enrolled = [];
      for (const [i, mac] of macs.entries()) enrolled.push(await enrollMachine(run.url, mac, { serial: `SN-UI-${i + 1}`, product: "Standard PC (Q35)" }));
      for (const mac of macs) await pendingRow(page, mac).waitFor({ timeout: 15_000 });
      expect(await page.evaluate(() => (window as unknown as { marker?: string }).marker)).toBe("no reload");
      await expect.poll(() => page.locator('[data-region="pending-count"]').textContent(), { timeout: 10_000 }).toBe("(3)");
      const first = pendingRow(page, macs[0]!);
      expect(await first.textContent()).toContain("SN-UI-1");
      expect(await first.textContent()).toContain("Standard PC (Q35)");
      await page.screenshot({ path: join(outDir, "console-desktop.png"), fullPage: true });

      // Approve the first with a hostname typed into its row, from the keyboard.
      await first.getByLabel(`Hostname for ${macs[0]}`).fill("rack1-node1");
      await first.getByLabel(`Hostname for ${macs[0]}`).press("Enter");
      await page.waitForURL(/\/ui\?done=/);
      expect(await page.locator(".notice").textContent()).toContain(`${macs[0]} is approved`);
      await expect.poll(() => fleetRow(page, macs[0]!).getAttribute("data-state")).toBe("approved");
      expect(await fleetRow(page, macs[0]!).textContent()).toContain("rack1-node1");
      expect(await pendingRow(page, macs[0]!).count()).toBe(0);

      // Reject the second with its button.
      await Promise.all([page.waitForURL(/\/ui\?done=/), pendingRow(page, macs[1]!).getByRole("button", { name: "Reject" }).click()]);
      expect(await fleetRow(page, macs[1]!).getAttribute("data-state")).toBe("rejected");
      expect(await pendingRow(page, macs[1]!).count()).toBe(0);

      // A post without the CSRF token (the session cookie alone) is refused and changes nothing.
      const id = enrolled[2]!.nodeId;
      const status = await page.evaluate(async (nodeId) => {
        const res = await fetch(`/ui/machines/${nodeId}/reject`, { method: "POST", body: new URLSearchParams({}), credentials: "same-origin" });
        return res.status;
      }, id);
      expect(status).toBe(403);
      await page.reload();
      expect(await fleetRow(page, macs[2]!).getAttribute("data-state")).toBe("pending");

      // The machine page: facts, state, timeline.
      await page.goto(`${run.url}/ui/machines/${enrolled[0]!.nodeId}`);
      expect(await page.locator("h1").textContent()).toContain("approved");
      expect(await page.locator("ol.timeline").textContent()).toContain("machine.approved");
      expect(await page.locator("ol.timeline").textContent()).toContain("admin:env");

      // Phone width: the pending machine's row is a card with its Approve button on screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${run.url}/ui`);
      const card = pendingRow(page, macs[2]!);
      const box = (await card.getByRole("button", { name: "Approve" }).boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
      await page.screenshot({ path: join(outDir, "console-phone.png"), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
