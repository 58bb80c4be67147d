// The dashboard in headless Chromium, against a running veer whose route
// `app` is in a canary from `blue` to `green` with traffic flowing.
//
//   node dashboard.mjs ADMIN_URL TOKEN [SCREENSHOT.png]
//
// Exits 0 when every check passed; prints what failed otherwise.
// Run by tests/it/dashboard.rs, which starts veer, the upstreams and the load.
import { launch, step, until } from "./chromium.mjs";

const [base, token, screenshot] = process.argv.slice(2);
if (!base || !token) {
  console.error("usage: node dashboard.mjs ADMIN_URL TOKEN [SCREENSHOT.png]");
  process.exit(2);
}
const ROUTE = "app";

async function api(method, path, body) {
  const resp = await fetch(new URL(path, base), {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await resp.json();
  if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${JSON.stringify(json)}`);
  return json;
}

async function route() {
  const status = await api("GET", "/api/v1/status");
  return status.routes.find((r) => r.name === ROUTE);
}

const { browser, page, problems } = await launch();
try {
  const card = page.locator(`article[data-route="${ROUTE}"]`);
  // Read in one go: the page redraws every poll.
  const shown = () =>
    card.evaluate((el) =>
      Object.fromEntries(
        [...el.querySelectorAll(".weight[data-pool]")].map((w) => [w.dataset.pool, parseInt(w.textContent, 10)])
      )
    );
  const same = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

  await step("the page loads and asks for the token", async () => {
    const resp = await page.goto(new URL("/", base).href);
    if (resp.status() !== 200) throw new Error(`GET / answered ${resp.status()}`);
    const csp = resp.headers()["content-security-policy"] || "";
    if (!csp.includes("script-src 'self'")) throw new Error(`no strict CSP: ${csp}`);
    await until("the page reports the missing token", async () =>
      (await page.locator("#conn").getAttribute("data-state")) === "unauthorized");
    if ((await card.count()) !== 0) throw new Error("route data shown without a token");
  });

  await step("with the token, it shows the weights the API reports", async () => {
    await page.fill("#token", token);
    await page.click("#token-form button[type=submit]");
    await card.waitFor({ timeout: 10_000 });
    await until("shown weights equal the API's", async () => same(await shown(), (await route()).weights));
    const phase = (await card.locator(".phase").textContent()).trim();
    const api_phase = (await route()).phase;
    if (phase !== api_phase) throw new Error(`phase shown ${phase}, API ${api_phase}`);
    const steps = await card.locator(".step .label").allTextContents();
    if (steps.join(",") !== "10%,50%,100%") throw new Error(`steps shown: ${steps}`);
  });

  await step("each endpoint shows where it came from", async () => {
    await until("the pools list every endpoint with its source", async () => {
      const sources = await page.locator("#pools .endpoint .source").allTextContents();
      return sources.length >= 2 && sources.every((s) => s === "file");
    });
  });

  await step("the charts fill with live samples", async () => {
    await until("a request rate is drawn for both pools", async () =>
      page.evaluate(() => {
        const c = document.querySelector('canvas[data-metric="rate"]');
        return /blue: \d/.test(c.title) && /green: \d/.test(c.title);
      }), 15_000);
    // A few more samples so the lines have some length.
    await page.waitForTimeout(4000);
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  });

  await step("pause and resume buttons act through the API", async () => {
    await card.locator('button[data-action="pause"]').click();
    await until("the API reports the route paused", async () => (await route()).phase === "paused");
    await until("the page shows it paused", async () =>
      (await card.locator(".phase").textContent()).trim() === "paused");
    await card.locator('button[data-action="resume"]').click();
    await until("the API reports it progressing again", async () => (await route()).phase === "progressing");
  });

  await step("weights changed through the API appear on the page", async () => {
    await api("PUT", `/api/v1/routes/${ROUTE}/weights`, { blue: 65, green: 35 });
    await until("the page shows blue 65% green 35%", async () => same(await shown(), { blue: 65, green: 35 }));
  });

  await step("a mirror set through the API shows its comparisons", async () => {
    await api("PUT", `/api/v1/routes/${ROUTE}/mirror`, { pool: "green", compare: { body: "hash" } });
    // Blue and green answer their own names: every copy differs in the body.
    await until("the page shows the mirror's differing bodies", async () => {
      const text = await card.locator(".shadow").textContent();
      return /mirror to green: [1-9]\d* compared/.test(text) && text.includes("body ×");
    }, 15_000);
    await api("DELETE", `/api/v1/routes/${ROUTE}/mirror`);
    await until("the mirror line goes away", async () =>
      (await card.locator(".shadow").textContent()).trim() === "");
  });

  await step("promote sends all traffic to the candidate", async () => {
    await card.locator('button[data-action="promote"]').click();
    await until("the API reports green at 100%", async () => (await route()).weights.green === 100);
    await until("the page shows green at 100%", async () => (await shown()).green === 100);
    await until("the event log shows the promotion", async () =>
      (await page.locator("#events").textContent()).includes("promote"));
  });

  if (problems.length) throw new Error(`page errors: ${problems.join("; ")}`);
  console.log("dashboard: all checks passed");
} catch (e) {
  console.error(`dashboard: FAILED: ${e.message}`);
  try {
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, "-failed.png"), fullPage: true });
  } catch (_) {}
  process.exitCode = 1;
} finally {
  await browser.close();
}
