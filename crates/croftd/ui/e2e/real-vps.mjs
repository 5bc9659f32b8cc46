// The panel against a real croftd with real VPSes (run by the root-only
// end-to-end test crates/croft/tests/remote.rs, which starts croftd in one
// network namespace and this browser in another, across TLS). The tenant's
// owner logs in, launches a VPS within quota and sees it run without a
// reload, runs a command on its console and sees the output, loads its CPU
// and sees the graph show it, and stops it. The provider's admin exports
// an image and imports it again. CROFT_URL and CROFT_PASSWORD (both
// users') come from the Rust test.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startBrowser, newUser, logIn, apiFrom, shoot, pressAndReload, settled } from "../tests/harness.mjs";

const KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIzPgRiAJf5waUdfKRav7j0a8YOkKDwJZ+ydRysiN0BT alice@laptop";

const url = process.env.CROFT_URL;
const password = process.env.CROFT_PASSWORD;
let browser;

before(async () => { browser = await startBrowser(); });
after(async () => { await browser?.close(); });

test("a tenant's owner runs a real VPS from the panel", async (t) => {
  assert.ok(url && password, "CROFT_URL and CROFT_PASSWORD");
  const page = await (await newUser(browser)).newPage();
  await logIn(page, url, "alice", password);
  await page.evaluate(() => { window.notReloaded = true; });
  await page.waitForSelector("body[data-live=true]");
  const status = page.locator("[data-vps=web] [data-testid=status]");

  await t.test("launched within quota, it shows running without a reload", async () => {
    const over = await apiFrom(page, "POST", "/1.0/instances", { name: "web", image: "busybox" });
    assert.equal(over.status, 400, JSON.stringify(over.body));
    await page.fill("#launch-form [name=name]", "web");
    await page.selectOption("#launch-form [name=image]", "busybox");
    await page.selectOption("#launch-form [name=plan]", "small");
    await page.click("#launch-form button[type=submit]");
    try {
      await status.filter({ hasText: "running" }).waitFor({ timeout: 60000 });
    } catch (e) {
      // What the page showed instead, for the log.
      await shoot(page, "real-launch-failed");
      throw new Error(`${e.message}\ncards: ${await page.innerHTML(".cards")}\ntoast: ${await page.textContent("#toast")}`);
    }
    assert.equal(await page.evaluate(() => window.notReloaded), true);
  });

  await t.test("its console runs a command and shows the output", async () => {
    await settled(page);
    await Promise.all([page.waitForURL(/\/console$/), page.click("[data-vps=web] a.button")]);
    await page.waitForSelector("#terminal[data-attached=true]");
    const screen = page.locator("#terminal .xterm-rows");
    // busybox's console asks for Enter first.
    await page.keyboard.press("Enter");
    await page.keyboard.type("echo con$((40+2))sole\r");
    await screen.filter({ hasText: "con42sole" }).waitFor({ timeout: 20000 });
    // Load for the graph: a busy loop in the background.
    await page.keyboard.type("(while :; do :; done) &\r");
    await shoot(page, "real-console");
  });

  await t.test("the graph shows the load", async () => {
    await page.goto(`${url}/ui/instances/web`);
    const deadline = Date.now() + 150000;
    let busiest = 0;
    for (;;) {
      const h = await apiFrom(page, "GET", "/1.0/instances/web/metrics?range=hour");
      assert.equal(h.status, 200);
      const cpu = h.body.series.find((s) => s.name === "cpu_percent");
      busiest = Math.max(0, ...cpu.max.filter((v) => v != null));
      if (busiest > 20) break;
      assert.ok(Date.now() < deadline, `no busy minute in the graph yet (CPU max ${busiest} %)`);
      await page.waitForTimeout(5000);
    }
    await page.click("#graphs button[data-range=hour]");
    await page.waitForFunction(() => Number(document.getElementById("graphs").dataset.points) > 0);
    assert.equal(await page.locator("#graphs .uplot").count(), 5);
    await shoot(page, "real-vps");
  });

  await t.test("a snapshot is taken, restored while it runs, and deleted, and a root password made, on its page", async () => {
    page.on("dialog", (dialog) => dialog.accept());
    await page.fill("#snapshot-form [name=name]", "before");
    await pressAndReload(page, "#snapshot-form button[type=submit]");
    assert.equal(await page.locator("#snapshots tr[data-snapshot=before]").count(), 1);
    // Restored while it runs: stopped, restored and started again (a
    // refusal would fail pressAndReload with croftd's message).
    await pressAndReload(page, "#snapshots tr[data-snapshot=before] button:not(.danger)");
    const after = await apiFrom(page, "GET", "/1.0/instances/web");
    assert.equal(after.body.status, "running", JSON.stringify(after.body));
    await pressAndReload(page, "#snapshots tr[data-snapshot=before] button.danger");
    assert.equal(await page.locator("#snapshots tr[data-snapshot=before]").count(), 0);
    await page.fill("#ssh-key-form [name=key]", KEY);
    await pressAndReload(page, "#ssh-key-form button[type=submit]");
    assert.match(await page.textContent("#access"), /alice@laptop/);
    const activity = await page.textContent("[data-testid=activity]");
    assert.match(activity, /POST \/1\.0\/instances\/web\/ssh-keys/);
    await page.click("#access button[data-show=password]");
    await page.waitForFunction(() => document.getElementById("shown").textContent.length >= 12);
  });

  await t.test("stopped from its card, it shows stopped without a reload", async () => {
    await page.evaluate(() => { window.notReloaded = true; });
    await settled(page);
    await page.click("[data-vps=web] button[data-action=stop].danger");
    await status.filter({ hasText: "stopped" }).waitFor({ timeout: 30000 });
    assert.equal(await page.evaluate(() => window.notReloaded), true);
  });
});

test("the admin exports an image from the panel, imports the file as another, and deletes it", async () => {
  const admin = await (await newUser(browser)).newPage();
  admin.on("dialog", (dialog) => dialog.accept());
  await logIn(admin, url, "ops", password);
  await admin.goto(`${url}/ui/admin/images`);
  const [download] = await Promise.all([
    admin.waitForEvent("download"),
    admin.click("[data-testid=images] tr[data-image=busybox] a.button"),
  ]);
  assert.equal(download.suggestedFilename(), "busybox.tar.gz");
  const file = await download.path();
  await admin.fill("#import-form [name=name]", "busybox-copy");
  await admin.setInputFiles("#import-form [name=file]", file);
  await pressAndReload(admin, "#import-form button[type=submit]");
  const copy = admin.locator("[data-testid=images] tr[data-image=busybox-copy]");
  assert.match(await copy.textContent(), /imported/);
  await shoot(admin, "real-images");
  // The same name again: refused, saying so.
  await admin.fill("#import-form [name=name]", "busybox-copy");
  await admin.setInputFiles("#import-form [name=file]", file);
  await admin.click("#import-form button[type=submit]");
  await admin.waitForSelector("#toast.bad:not([hidden])");
  assert.match(await admin.textContent("#toast"), /exists/);
  await admin.reload();
  await pressAndReload(admin, "[data-testid=images] tr[data-image=busybox-copy] button.danger");
  assert.equal(await admin.locator("[data-testid=images] tr[data-image=busybox-copy]").count(), 0);
});
