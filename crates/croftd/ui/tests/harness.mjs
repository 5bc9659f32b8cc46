// What the panel's browser tests run against: a real croftd (the
// simulated backend, so no root is needed; CROFTD names the binary) on a
// TLS listener of its own, and Debian's Chromium driven by playwright-core.
// Everything started here is stopped and removed by `stop()`, also when a
// test fails.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../../..");

/** Where screenshots go: CROFT_SCREENSHOTS, or target/panel-screenshots. */
export const screenshots = process.env.CROFT_SCREENSHOTS || join(repo, "target/panel-screenshots");

/** Start croftd --simulate on a fresh state directory and a free port.
 * Resolves to { url, adminPassword, stop }. */
export async function startCroftd(extraConfig = "") {
  const dir = mkdtempSync(join(tmpdir(), "croft-panel-test-"));
  const config = join(dir, "croftd.toml");
  writeFileSync(config, [
    `state_dir = "${dir}/state"`,
    `run_dir = "${dir}/run"`,
    `https_address = "127.0.0.1:0"`,
    extraConfig,
  ].join("\n"));
  const binary = process.env.CROFTD || join(repo, "target/debug/croftd");
  const child = spawn(binary, ["--simulate", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const started = new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`croftd did not listen within 20 s:\n${log}`)), 20000);
    const read = (chunk) => {
      log += chunk.toString();
      const m = log.match(/listening for remote callers \(TLS 1\.3\) address=(\S+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    };
    child.stdout.on("data", read);
    child.stderr.on("data", read);
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`croftd exited (${code}):\n${log}`)); });
  });
  let address;
  try {
    address = await started;
  } catch (e) {
    // Nothing left behind when it never came up.
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  // Keep draining its output, so it never blocks on a full pipe.
  child.stdout.on("data", (c) => { log += c.toString(); });
  child.stderr.on("data", (c) => { log += c.toString(); });
  const adminPassword = readFileSync(join(dir, "state/panel-admin-password"), "utf8").trim();
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((ok) => child.once("exit", ok));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((ok) => setTimeout(ok, 5000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
    }
    // Its log beside the screenshots, to read when a test failed.
    mkdirSync(screenshots, { recursive: true });
    writeFileSync(join(screenshots, "croftd.log"), log);
    rmSync(dir, { recursive: true, force: true });
  };
  return { url: `https://${address}`, adminPassword, stop, log: () => log };
}

/** Debian's Chromium, headless, quiet on this closed network. */
export async function startBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
}

/** A new browser profile (its own cookies) that accepts croftd's
 * self-signed certificate. */
export async function newUser(browser) {
  return browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
}

/** Log in through the login page; resolves once the dashboard shows. */
export async function logIn(page, url, name, password) {
  await page.goto(`${url}/ui/login`);
  await page.fill("input[name=name]", name);
  await page.fill("input[name=password]", password);
  await Promise.all([page.waitForURL(`${url}/ui/`), page.click("button[type=submit]")]);
}

/** Call the API from `page`, as its scripts do (its session, its origin):
 * { status, body }. */
export async function apiFrom(page, method, path, body) {
  return page.evaluate(async ([method, path, body]) => {
    const init = { method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const r = await fetch(path, init);
    const text = await r.text();
    let parsed = null;
    try { parsed = JSON.parse(text); } catch (_) { parsed = text; }
    return { status: r.status, body: parsed };
  }, [method, path, body]);
}

/** Save a screenshot of `page` as `name`.png. */
export async function shoot(page, name) {
  mkdirSync(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
}

/** Press `button` (a selector) of a `data-api` form or button and wait
 * for the page to come back with the outcome; if croftd refused, fail
 * with what the page said. */
export async function pressAndReload(page, button) {
  // The wait that loses stays pending: it must not reject unheard later.
  const loaded = page.waitForEvent("load").then(() => null, () => null);
  const refused = page
    .waitForSelector("#toast.bad:not([hidden])")
    .then(async () => page.textContent("#toast"))
    .catch(() => null);
  await page.click(button);
  const error = await Promise.race([loaded, refused]);
  if (error) throw new Error(`${button}: refused: ${error}`);
}

/** Wait until the page's live updates are done: no card is being fetched
 * again (htmx marks it `.htmx-request`), for a moment. A click on a card
 * while htmx swaps it in would land on the card that is going away. */
export async function settled(page) {
  for (let calm = 0; calm < 3; ) {
    await page.waitForTimeout(100);
    calm = (await page.locator(".htmx-request").count()) === 0 ? calm + 1 : 0;
  }
}
