// The panel in a real browser (Debian's Chromium) against a real croftd on
// the simulated backend: the admin sets up a tenant, a plan and users;
// the tenant's owner launches a VPS within quota and watches it start and
// stop without a reload; graphs fill; a viewer cannot press power; another
// tenant cannot open the VPS by URL; other origins get nothing. Screenshots
// of the main pages are saved (harness.mjs says where).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { startCroftd, startBrowser, newUser, logIn, apiFrom, shoot, pressAndReload, settled } from "./harness.mjs";

const PASSWORD = "a long enough password";
let croftd, browser;

before(async () => {
  // Sampled every second, so a minute's point comes a minute on.
  croftd = await startCroftd("metrics_interval = 1");
  browser = await startBrowser();
});

after(async () => {
  await browser?.close();
  await croftd?.stop();
});

test("the panel, from the admin's setup to a tenant's VPS", async (t) => {
  const { url } = croftd;
  const admin = await (await newUser(browser)).newPage();
  const alice = await (await newUser(browser)).newPage();

  await t.test("a wrong password is refused on the login page", async () => {
    const page = await (await newUser(browser)).newPage();
    await page.goto(`${url}/ui/login`);
    await shoot(page, "login");
    await page.fill("input[name=name]", "admin");
    await page.fill("input[name=password]", "not the password");
    await page.click("button[type=submit]");
    await page.waitForSelector(".error");
    assert.match(await page.textContent(".error"), /wrong user name or password/);
    assert.equal(new URL(page.url()).pathname, "/ui/login");
    await page.context().close();
  });

  await t.test("the admin logs in and makes tenants, a quota, a plan and users on its pages", async () => {
    await logIn(admin, url, "admin", croftd.adminPassword);
    assert.equal(await admin.textContent("[data-testid=user]"), "admin");
    // Each form calls the API, then the page comes back with the outcome.
    const submit = async (form, fields) => {
      for (const [name, value] of Object.entries(fields)) {
        const field = admin.locator(`${form} [name="${name}"]`);
        if (await field.evaluate((e) => e.tagName === "SELECT")) await field.selectOption(value);
        else await field.fill(value);
      }
      await pressAndReload(admin, `${form} button[type=submit]`);
    };
    await admin.goto(`${url}/ui/admin/tenants`);
    await submit("#tenant-form", { name: "acme", description: "ACME <b>Ltd</b>" });
    await submit("#tenant-form", { name: "beta" });
    await submit("#quota-form", { tenant: "acme", vpses: "2", memory_bytes: "1GiB" });
    const acme = admin.locator("[data-testid=tenants] tr[data-tenant=acme]");
    assert.match(await acme.textContent(), /0 of 2/);
    assert.match(await acme.textContent(), /0B of 1GiB/);
    // A description is shown as text, never as markup.
    assert.equal(await acme.locator("b").count(), 0);
    assert.match(await acme.textContent(), /ACME <b>Ltd<\/b>/);
    await admin.goto(`${url}/ui/admin/plans`);
    await submit("#plan-form", { name: "small", "config[limits.cpu]": "1", "config[limits.memory]": "256MiB", "config[limits.processes]": "200" });
    assert.match(await admin.textContent("[data-testid=plans] tr[data-plan=small]"), /limits.memory=256MiB/);
    await admin.goto(`${url}/ui/admin/users`);
    await submit("#user-form", { name: "alice", role: "owner", tenant: "acme", password: PASSWORD });
    await submit("#user-form", { name: "vic", role: "viewer", tenant: "acme", password: PASSWORD });
    await submit("#user-form", { name: "bob", role: "owner", tenant: "beta", password: PASSWORD });
    // A short password is refused, saying why, and makes no user.
    await admin.fill("#user-form [name=name]", "eve");
    await admin.fill("#user-form [name=password]", "short");
    await admin.evaluate(() => document.querySelector("#user-form [name=password]").removeAttribute("minlength"));
    await admin.click("#user-form button[type=submit]");
    await admin.waitForSelector("#toast.bad:not([hidden])");
    assert.match(await admin.textContent("#toast"), /at least 10 characters/);
    for (const name of ["alice", "vic", "bob"]) {
      assert.equal(await admin.locator(`[data-testid=users] tr[data-user=${name}]`).count(), 1, name);
    }
    assert.equal(await admin.locator("[data-testid=users] tr[data-user=eve]").count(), 0);
    await shoot(admin, "admin-users");
    await admin.goto(`${url}/ui/admin/host`);
    assert.match(await admin.textContent("[data-testid=capacity]"), /CPU[\s\S]*Memory[\s\S]*Disk pool[\s\S]*IPv4 addresses/);
    await shoot(admin, "admin-host");
  });

  await t.test("the owner launches a VPS and sees it run, then stop, without a reload", async () => {
    await logIn(alice, url, "alice", PASSWORD);
    assert.match(await alice.textContent(".cards"), /No servers yet/);
    await alice.evaluate(() => { window.notReloaded = true; });
    await alice.waitForSelector("body[data-live=true]");
    await alice.fill("#launch-form [name=name]", "web1");
    await alice.selectOption("#launch-form [name=image]", "busybox");
    await alice.selectOption("#launch-form [name=plan]", "small");
    await alice.click("#launch-form button[type=submit]");
    const status = alice.locator("[data-vps=web1] [data-testid=status]");
    await status.filter({ hasText: "running" }).waitFor({ timeout: 15000 });
    // Past the quota (memory: 1 GiB for four of these): refused, saying
    // so, and nothing made.
    const big = await apiFrom(alice, "POST", "/1.0/instances", { name: "big", image: "busybox", config: { "limits.memory": "2GiB" } });
    assert.equal(big.status, 409, JSON.stringify(big.body));
    // Without a plan (no memory limit, which the quota caps): refused on
    // the page.
    await alice.fill("#launch-form [name=name]", "web9");
    await alice.selectOption("#launch-form [name=plan]", "");
    await alice.click("#launch-form button[type=submit]");
    await alice.waitForSelector("#toast.bad:not([hidden])");
    assert.match(await alice.textContent("#toast"), /limits.memory/);
    assert.equal(await alice.locator("[data-vps=web9]").count(), 0);
    await settled(alice);
    await shoot(alice, "dashboard");
    await alice.click("[data-vps=web1] button[data-action=stop]:not(.danger)");
    await status.filter({ hasText: "stopped" }).waitFor({ timeout: 15000 });
    await settled(alice);
    await alice.click("[data-vps=web1] button[data-action=start]");
    await status.filter({ hasText: "running" }).waitFor({ timeout: 15000 });
    assert.equal(await alice.evaluate(() => window.notReloaded), true, "the page was not reloaded");
  });

  await t.test("a viewer sees the VPS and cannot press power", async () => {
    const vic = await (await newUser(browser)).newPage();
    await logIn(vic, url, "vic", PASSWORD);
    assert.equal(await vic.locator("[data-vps=web1] button[data-action]").count(), 0);
    const r = await apiFrom(vic, "POST", "/1.0/instances/web1/state", { action: "stop", force: true });
    assert.equal(r.status, 403, JSON.stringify(r.body));
    // Nothing changed: croftd says so (the card would show it only later).
    assert.equal((await apiFrom(vic, "GET", "/1.0/instances/web1")).body.status, "running");
    await vic.context().close();
  });

  await t.test("another tenant cannot open the VPS by URL", async () => {
    const bob = await (await newUser(browser)).newPage();
    await logIn(bob, url, "bob", PASSWORD);
    for (const path of ["/ui/instances/web1", "/ui/instances/web1?tenant=acme"]) {
      const response = await bob.goto(`${url}${path}`);
      assert.equal(response.status(), 404, path);
    }
    const r = await apiFrom(bob, "GET", "/1.0/instances/web1?tenant=acme");
    assert.equal(r.status, 404);
    await bob.context().close();
  });

  await t.test("other origins get nothing: a forged POST, a cross-site form, a WebSocket, a reused ticket", async () => {
    // The session's cookie with another Origin: refused, nothing changed.
    const forged = await alice.context().request.post(`${url}/1.0/instances/web1/state`, {
      headers: { Origin: "https://evil.example", "Content-Type": "application/json" },
      data: { action: "stop", force: true },
    });
    assert.equal(forged.status(), 403);
    assert.match((await forged.json()).error, /cross-origin/);
    // A page of another origin, in alice's browser, posting a form to
    // croftd and opening its event stream.
    const evil = createServer((req, res) => {
      res.setHeader("Content-Type", "text/html");
      res.end(`<!doctype html><form id=f method=post enctype=text/plain action="${url}/1.0/instances/web1/state">
        <input name='{"action":"stop","force":true,"x":"' value='"}'></form>
        <script>
          const ws = new WebSocket("${url.replace("https", "wss")}/1.0/events");
          ws.onopen = () => { document.title = "opened"; };
          ws.onerror = () => { document.title = "refused"; };
        </script>`);
    });
    await new Promise((ok) => evil.listen(0, "127.0.0.1", ok));
    try {
      const page = await alice.context().newPage();
      await page.goto(`http://127.0.0.1:${evil.address().port}/`);
      await page.waitForFunction(() => document.title === "opened" || document.title === "refused");
      assert.equal(await page.title(), "refused");
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.url().includes("/1.0/instances/web1/state")),
        page.evaluate(() => document.getElementById("f").submit()),
      ]);
      assert.ok([401, 403].includes(response.status()), `status ${response.status()}`);
      await page.close();
    } finally {
      evil.close();
    }
    assert.equal((await apiFrom(alice, "GET", "/1.0/instances/web1")).body.status, "running");
    // A ticket opens one WebSocket, once.
    const outcome = await alice.evaluate(async () => {
      const r = await fetch("/1.0/tickets", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path: "/1.0/events" }) });
      const { ticket } = await r.json();
      const open = (t) => new Promise((ok) => {
        const ws = new WebSocket(`wss://${location.host}/1.0/events?ticket=${t}`);
        ws.onopen = () => { ws.close(); ok("opened"); };
        ws.onerror = () => ok("refused");
      });
      return [await open(ticket), await open(ticket)];
    });
    assert.deepEqual(outcome, ["opened", "refused"]);
  });

  await t.test("the VPS page draws its usage, and the graph gets points", async () => {
    await alice.goto(`${url}/ui/instances/web1`);
    await alice.waitForSelector("#graphs[data-points]");
    // The first minute point is written when the next minute starts.
    const deadline = Date.now() + 130000;
    while (Number(await alice.getAttribute("#graphs", "data-points")) === 0) {
      assert.ok(Date.now() < deadline, "no point in the graph after two minutes");
      await alice.waitForTimeout(5000);
      await alice.click("#graphs button[data-range=hour]");
    }
    assert.equal(await alice.locator("#graphs .uplot").count(), 5);
    await shoot(alice, "vps");
  });

  await t.test("the console answers in the browser, and attaches again after a drop", async () => {
    await alice.goto(`${url}/ui/`);
    await Promise.all([alice.waitForURL(/\/console$/), alice.click("[data-vps=web1] a.button")]);
    await alice.waitForSelector("#terminal[data-attached=true]");
    const screen = alice.locator("#terminal .xterm-rows");
    // The simulator's console greets, then echoes what is typed.
    await screen.filter({ hasText: "sim console" }).waitFor();
    await alice.keyboard.type("hello from the browser");
    await screen.filter({ hasText: "hello from the browser" }).waitFor();
    await shoot(alice, "console");
    await alice.evaluate(() => window.croftConsole.drop());
    await alice.waitForSelector("#terminal[data-attached=false]");
    await alice.waitForSelector("#terminal[data-attached=true]", { timeout: 15000 });
    await alice.keyboard.type(" again");
    await screen.filter({ hasText: "again" }).waitFor();
    // A viewer gets no console: the page is refused.
    const vic = await (await newUser(browser)).newPage();
    await logIn(vic, url, "vic", PASSWORD);
    const response = await vic.goto(`${url}/ui/instances/web1/console`);
    assert.equal(response.status(), 403);
    await vic.context().close();
  });

  await t.test("the VPS page: a rebuild needs its name typed; a firewall rule is added, a bad one refused; its activity shows them", async () => {
    await alice.goto(`${url}/ui/instances/web1`);
    // A rebuild with another name typed: refused, and nothing asked.
    await alice.fill("#rebuild-form [name=confirm]", "web2");
    await alice.click("#rebuild-form button[type=submit]");
    await alice.waitForSelector("#toast.bad:not([hidden])");
    assert.match(await alice.textContent("#toast"), /type web1 to confirm/);
    await alice.reload();
    await alice.selectOption("#rule-form [name=protocol]", "tcp");
    await alice.fill("#rule-form [name=port]", "443");
    await pressAndReload(alice, "#rule-form button[type=submit]");
    assert.match(await alice.textContent("#firewall table"), /allow\s*tcp\s*443/);
    // A bad port is refused with croftd's reason, and adds nothing.
    await alice.fill("#rule-form [name=port]", "99999");
    await alice.click("#rule-form button[type=submit]");
    await alice.waitForSelector("#toast.bad:not([hidden])");
    assert.match(await alice.textContent("#toast"), /port/);
    await alice.reload();
    assert.doesNotMatch(await alice.textContent("#firewall table"), /99999/);
    const activity = await alice.textContent("[data-testid=activity]");
    assert.match(activity, /POST \/1\.0\/instances\/web1\/firewall\/rules/);
    assert.match(activity, /user alice/);
    await shoot(alice, "vps-settings");
  });

  await t.test("the admin's audit log shows the changes and the logins, and tenants see no admin page", async () => {
    await admin.goto(`${url}/ui/admin/audit?tenant=acme`);
    const log = await admin.textContent("[data-testid=audit]");
    assert.match(log, /user alice/);
    assert.match(log, /POST \/1\.0\/instances\/web1\/state/);
    // alice's login, and (in no tenant) the wrong password tried as admin.
    assert.match(log, /alice[\s\S]*login\s*POST \/ui\/login\s*303/);
    await admin.goto(`${url}/ui/admin/audit`);
    assert.match(await admin.textContent("[data-testid=audit]"), /login as "admin"[\s\S]*POST \/ui\/login\s*401/);
    await admin.goto(`${url}/ui/admin/audit?tenant=acme`);
    await shoot(admin, "admin-audit");
    for (const path of ["/ui/admin/tenants", "/ui/admin/audit", "/ui/admin/host", "/ui/admin/access"]) {
      const response = await alice.goto(`${url}${path}`);
      assert.equal(response.status(), 403, path);
    }
  });

  await t.test("the admin's access page makes and revokes a metrics token and a trust token; an import the pool cannot keep is refused", async () => {
    admin.on("dialog", (dialog) => dialog.accept());
    await admin.goto(`${url}/ui/admin/access`);
    await admin.selectOption("#provider-token-form [name=role]", "metrics");
    await admin.fill("#provider-token-form [name=description]", "prometheus");
    await admin.click("#provider-token-form button[type=submit]");
    await admin.waitForFunction(() => document.getElementById("shown").textContent.startsWith("croft_"));
    const token = await admin.textContent("#shown");
    // The token scrapes from elsewhere (no session): a browser profile
    // of its own.
    const scraper = await newUser(browser);
    const scrape = () => scraper.request.get(`${url}/metrics`, { headers: { Authorization: `Bearer ${token}` } });
    const scraped = await scrape();
    assert.equal(scraped.status(), 200);
    assert.match(await scraped.text(), /croft_vps_running\{tenant="acme",vps="web1"\}/);
    await admin.reload();
    const row = admin.locator("[data-testid=tokens] tr", { hasText: "prometheus" });
    assert.match(await row.textContent(), /metrics/);
    await pressAndReload(admin, `[data-testid=tokens] tr[data-token="${await row.getAttribute("data-token")}"] button`);
    assert.equal(await admin.locator("[data-testid=tokens] tr", { hasText: "prometheus" }).count(), 0);
    assert.equal((await scrape()).status(), 401, "a revoked token is refused");
    await scraper.close();
    // A trust token for beta's owner: shown once, pending, then dropped.
    await admin.fill("#trust-token-form [name=name]", "bobs-laptop");
    await admin.selectOption("#trust-token-form [name=tenant]", "beta");
    await admin.click("#trust-token-form button[type=submit]");
    await admin.waitForFunction(() => document.getElementById("shown").textContent.length > 40);
    await admin.reload();
    const pending = admin.locator("[data-testid=trust-tokens] tr", { hasText: "bobs-laptop" });
    assert.match(await pending.textContent(), /beta[\s\S]*owner/);
    await shoot(admin, "admin-access");
    await pressAndReload(admin, `[data-testid=trust-tokens] tr[data-trust-token="${await pending.getAttribute("data-trust-token")}"] button`);
    assert.equal(await admin.locator("[data-testid=trust-tokens] tr", { hasText: "bobs-laptop" }).count(), 0);
    // A bad role: refused, saying why, nothing made.
    const refused = await apiFrom(admin, "POST", "/1.0/trust/tokens", { name: "x", role: "root" });
    assert.equal(refused.status, 400);
    assert.match(refused.body.error, /admin, owner, viewer or metrics/);
    // The simulator's pool (a directory) keeps no imported image: the
    // upload is refused with the reason, and no image appears.
    await admin.goto(`${url}/ui/admin/images`);
    const before = await admin.locator("[data-testid=images] tr[data-image]").count();
    await admin.fill("#import-form [name=name]", "uploaded");
    await admin.setInputFiles("#import-form [name=file]", { name: "rootfs.tar", mimeType: "application/x-tar", buffer: Buffer.alloc(10240) });
    await admin.click("#import-form button[type=submit]");
    await admin.waitForSelector("#toast.bad:not([hidden])");
    assert.match(await admin.textContent("#toast"), /cannot keep imported images/);
    await admin.reload();
    assert.equal(await admin.locator("[data-testid=images] tr[data-image]").count(), before);
    assert.equal(await admin.locator("[data-testid=images] tr[data-image=uploaded]").count(), 0);
  });

  await t.test("the account page shows usage against the quota, makes an API token, and changes the password", async () => {
    await alice.goto(`${url}/ui/account`);
    assert.match(await alice.textContent("[data-testid=usage]"), /VPSes\s*1 of 2/);
    await alice.fill("#token-form [name=description]", "ci deploys");
    await alice.click("#token-form button[type=submit]");
    await alice.waitForFunction(() => document.getElementById("shown").textContent.startsWith("croft_"));
    await alice.reload();
    assert.match(await alice.textContent("#tokens table"), /ci deploys/);
    await alice.fill("input[name=current]", PASSWORD);
    await alice.fill("input[name=password]", "another long password");
    await alice.click("#password-form button[type=submit]");
    await alice.waitForSelector("#toast:not([hidden])");
    assert.match(await alice.textContent("#toast"), /Password changed/);
    await shoot(alice, "account");
  });
});
