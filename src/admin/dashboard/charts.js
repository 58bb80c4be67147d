// veer dashboard charts: one line per pool over the last minutes, drawn
// on a canvas. Loaded before dashboard.js, which calls veerChart.
"use strict";

function veerChart(canvas, samples, metric, spec, now, historyS, color) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight;
  if (!w || !h) return;
  if (canvas.width !== Math.round(w * ratio)) canvas.width = Math.round(w * ratio);
  if (canvas.height !== Math.round(h * ratio)) canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const left = 40, right = 8, top = 6, bottom = 18;
  const pw = w - left - right, ph = h - top - bottom;
  const pools = new Set();
  let max = 0;
  for (const s of samples) {
    for (const [pool, v] of Object.entries(s.pools)) {
      pools.add(pool);
      if (v[metric] !== null) max = Math.max(max, v[metric]);
    }
  }
  max = niceCeil(Math.max(max * 1.1, spec.floor || 1));
  const span = Math.max(60, Math.min(historyS, samples.length ? now - samples[0].t : 60));
  const x = (t) => left + pw * (1 - (now - t) / span);
  const y = (v) => top + ph * (1 - v / max);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#667085";
  ctx.strokeStyle = "#e3e7ee";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const v = (max * i) / 2;
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left, yy);
    ctx.lineTo(left + pw, yy);
    ctx.stroke();
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.fillText(formatAxis(v), left - 5, yy);
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "alphabetic";
  ctx.fillText("-" + Math.round(span) + "s", left, h - 4);
  ctx.textAlign = "right";
  ctx.fillText("now", left + pw, h - 4);
  for (const pool of pools) {
    ctx.strokeStyle = color(pool);
    ctx.lineWidth = 2;
    ctx.lineJoin = "round";
    ctx.beginPath();
    let pen = false;
    for (const s of samples) {
      const v = s.pools[pool] ? s.pools[pool][metric] : null;
      if (v === null || v === undefined) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(x(s.t), y(v));
      else ctx.moveTo(x(s.t), y(v));
      pen = true;
    }
    ctx.stroke();
  }
  const latest = samples.length ? samples[samples.length - 1].pools : {};
  canvas.title = Object.entries(latest)
    .map(([p, v]) => p + ": " + (v[metric] === null ? "-" : v[metric].toFixed(spec.digits) + spec.unit))
    .join("  ");
}

function niceCeil(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function formatAxis(v) {
  if (v >= 1000) return (v / 1000).toFixed(v % 1000 ? 1 : 0) + "k";
  return v % 1 ? v.toFixed(1) : String(v);
}

