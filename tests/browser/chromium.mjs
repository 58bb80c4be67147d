// Debian's Chromium, headless, driven by playwright-core: no browser
// download, a fresh profile per run, and no background connections (the
// test machines have no outside network).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

// A browser and one page. `problems` collects script errors and failed
// loads (other than the refused API calls a test provokes).
export async function launch({ width = 1280, height = 900 } = {}) {
  const profile = mkdtempSync(join(tmpdir(), "veer-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width, height },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on("pageerror", (e) => problems.push(`script error: ${e.message}`));
  page.on("console", (m) => {
    // CSP violations and failed loads show up here.
    if (m.type() === "error" && !/status of 401/.test(m.text())) problems.push(m.text());
  });
  const browser = {
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
  return { browser, page, problems };
}

// Runs one named check, printing it.
export async function step(name, check) {
  const started = Date.now();
  await check();
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
}

// Polls `probe` until it returns true, for at most `limit` ms.
export async function until(what, probe, limit = 10_000) {
  const deadline = Date.now() + limit;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not within ${limit} ms${last ? ` (last error: ${last.message})` : ""}`);
}
