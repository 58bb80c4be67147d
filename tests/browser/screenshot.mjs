// Screenshots for the README, in the same headless Chromium as the tests.
//
//   node screenshot.mjs page URL OUT.png [WAIT_MS]   a live page (the dashboard)
//   node screenshot.mjs terminal TEXT OUT.png        a terminal capture
//                                                    (`tmux capture-pane -e -p`)
// Run by docs/screenshots.sh.
import { readFileSync } from "node:fs";
import { launch } from "./chromium.mjs";

const [mode, source, out, wait] = process.argv.slice(2);
if (!["page", "terminal"].includes(mode) || !source || !out) {
  console.error("usage: node screenshot.mjs page URL OUT.png [WAIT_MS] | terminal TEXT OUT.png");
  process.exit(2);
}

const COLORS = ["#1e1e1e", "#f14c4c", "#23d18b", "#e5c07b", "#3b8eea", "#d670d6", "#29b8db", "#e5e5e5"];

const escape = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

// ANSI SGR (colors, bold) to spans; other escapes are dropped.
function toHtml(text) {
  let html = "";
  let style = {};
  const open = () => {
    const css = [];
    if (style.fg) css.push(`color:${style.fg}`);
    if (style.bold) css.push("font-weight:bold");
    if (style.dim) css.push("opacity:0.7");
    return css.length ? `<span style="${css.join(";")}">` : "<span>";
  };
  html += open();
  for (const part of text.split(/(\x1b\[[0-9;]*[A-Za-z])/)) {
    const m = /^\x1b\[([0-9;]*)m$/.exec(part);
    if (m) {
      for (const code of (m[1] || "0").split(";").map(Number)) {
        if (code === 0) style = {};
        else if (code === 1) style.bold = true;
        else if (code === 2) style.dim = true;
        else if (code === 22) style.bold = style.dim = false;
        else if (code >= 30 && code <= 37) style.fg = COLORS[code - 30];
        else if (code >= 90 && code <= 97) style.fg = COLORS[code - 90];
        else if (code === 39) delete style.fg;
      }
      html += "</span>" + open();
    } else if (!part.startsWith("\x1b")) {
      html += escape(part);
    }
  }
  return html + "</span>";
}

function terminalPage(text) {
  const body = toHtml(text.replace(/\s+$/, ""));
  return `<!doctype html><html><head><meta charset="utf-8"><style>
    body { margin: 0; background: #f4f6f9; padding: 24px; display: inline-block; }
    .window { background: #1e1e1e; border-radius: 10px; box-shadow: 0 8px 24px rgba(0,0,0,.25); overflow: hidden; }
    .bar { height: 28px; background: #2d2d2d; display: flex; align-items: center; gap: 8px; padding: 0 12px; }
    .bar i { width: 12px; height: 12px; border-radius: 50%; display: inline-block; }
    pre { margin: 0; padding: 14px 18px 18px; color: #e5e5e5;
          font: 14px/1.45 "DejaVu Sans Mono", ui-monospace, monospace; white-space: pre; }
  </style></head><body><div class="window"><div class="bar">
    <i style="background:#ff5f56"></i><i style="background:#ffbd2e"></i><i style="background:#27c93f"></i>
  </div><pre>${body}</pre></div></body></html>`;
}

const { browser, page } = await launch({ width: 1280, height: 900 });
try {
  if (mode === "page") {
    await page.goto(source);
    await page.waitForTimeout(Number(wait || 5000));
    await page.screenshot({ path: out, fullPage: true });
  } else {
    await page.setContent(terminalPage(readFileSync(source, "utf8")));
    await page.locator(".window").screenshot({ path: out });
  }
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
}
