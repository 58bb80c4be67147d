// veer dashboard: polls /api/v1/status and /api/v1/events, keeps a short
// ring of samples per route×pool for the charts, and sends the rollout
// actions. The token lives in one variable of this closure and nowhere
// else: not in storage, not in cookies, not in the URL.
(() => {
  "use strict";

  const POLL_MS = 1000;
  const EVENTS_EVERY = 2; // polls
  const HISTORY_S = 300; // what the charts show
  const PALETTE = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777"];
  const METRICS = {
    rate: { unit: "/s", digits: 1 },
    errors: { unit: "%", digits: 1, floor: 5 },
    p95: { unit: "ms", digits: 1, floor: 1 },
  };

  let token = "";
  let polls = 0;
  let timer = null;
  const cards = new Map(); // route name -> { el, samples, last }
  const colors = new Map(); // pool name -> color
  const $ = (sel, root = document) => root.querySelector(sel);

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function color(pool) {
    if (!colors.has(pool)) colors.set(pool, PALETTE[colors.size % PALETTE.length]);
    return colors.get(pool);
  }

  async function api(method, path, body) {
    const headers = {};
    if (token) headers.Authorization = "Bearer " + token;
    // Always JSON: the API refuses mutating calls without it.
    headers["Content-Type"] = "application/json";
    const resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    let data = null;
    try {
      data = await resp.json();
    } catch (_) {
      data = { error: "not JSON (" + resp.status + ")" };
    }
    if (!resp.ok) {
      const err = new Error((data && data.error) || "HTTP " + resp.status);
      err.status = resp.status;
      throw err;
    }
    return data;
  }

  function setConn(state, text) {
    const conn = $("#conn");
    conn.dataset.state = state;
    $("#conn-text").textContent = text;
  }

  function notice(text) {
    const n = $("#notice");
    n.hidden = !text;
    n.textContent = text || "";
  }

  // ---- polling ----------------------------------------------------------

  async function poll(withEvents) {
    polls += 1;
    try {
      const status = await api("GET", "/api/v1/status");
      renderStatus(status);
      if (withEvents === true || polls % EVENTS_EVERY === 1) {
        renderEvents((await api("GET", "/api/v1/events")).events || []);
      }
      setConn("live", "live · " + new Date().toLocaleTimeString([], { hour12: false }));
      notice("");
    } catch (e) {
      if (e.status === 401) {
        setConn("unauthorized", "token needed");
        notice(token ? "The admin API refused this token." : "This admin API needs a token: enter it above.");
        $("#token").focus();
      } else {
        setConn("error", "unreachable");
        notice("Cannot reach the admin API: " + e.message);
      }
    }
  }

  function start() {
    if (timer) clearInterval(timer);
    polls = 0;
    poll();
    timer = setInterval(poll, POLL_MS);
  }

  // ---- routes -----------------------------------------------------------

  function renderStatus(status) {
    const now = performance.now() / 1000;
    (status.pools || []).forEach((p) => color(p.name));
    const seen = new Set();
    for (const route of status.routes || []) {
      seen.add(route.name);
      let card = cards.get(route.name);
      if (!card) card = addCard(route.name);
      sample(card, route, now);
      renderRoute(card, route);
      drawCharts(card, now);
    }
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
    renderPools(status.pools || []);
    renderCluster(status.cluster);
  }

  // The fleet, with [cluster]: leader, connection, replicas and the
  // revision each applied.
  function renderCluster(cluster) {
    const box = $("#cluster");
    if (!box) return;
    box.hidden = !cluster;
    if (!cluster) return;
    const replicas = (cluster.replicas || [])
      .map((r) => r.id + "@" + r.generation + " (" + (r.requests || 0) + " req)")
      .join(" ");
    box.textContent = "fleet: replica " + cluster.replica + ", leader " + (cluster.leader || "none") +
      ", " + (cluster.connected ? "connected" : "disconnected") + "; replicas " + replicas;
  }

  function addCard(name) {
    const el = $("#route-template").content.firstElementChild.cloneNode(true);
    el.dataset.route = name;
    $(".route-name", el).textContent = name;
    for (const button of el.querySelectorAll("button[data-action]")) {
      button.addEventListener("click", () => act(name, button.dataset.action, el));
    }
    $("#routes").appendChild(el);
    const card = { el, samples: [], last: null };
    cards.set(name, card);
    return card;
  }

  // One sample per poll: request and error rates from the cumulative
  // counters, p95 from the last analysis window.
  function sample(card, route, now) {
    const totals = route.totals || {};
    const point = { t: now, pools: {} };
    const pools = new Set([...Object.keys(totals), ...Object.keys(route.weights || {})]);
    for (const pool of pools) {
      const cur = totals[pool] || { requests: 0, failures: 0 };
      const prev = card.last && card.last.totals[pool];
      const dt = card.last ? now - card.last.t : 0;
      const s = { rate: null, errors: null, p95: null };
      if (prev && dt > 0) {
        const dr = Math.max(0, cur.requests - prev.requests);
        const df = Math.max(0, cur.failures - prev.failures);
        s.rate = dr / dt;
        s.errors = dr > 0 ? (100 * df) / dr : null;
      }
      const a = route.analysis && route.analysis[pool];
      if (a && a.requests > 0 && typeof a.p95 === "number") s.p95 = a.p95;
      point.pools[pool] = s;
    }
    card.last = { t: now, totals };
    if (Object.keys(point.pools).length) card.samples.push(point);
    while (card.samples.length && card.samples[0].t < now - HISTORY_S) card.samples.shift();
  }

  function renderRoute(card, route) {
    const root = card.el;
    const phase = $(".phase", root);
    phase.textContent = route.phase;
    phase.dataset.phase = route.phase;
    $(".flow", root).textContent = route.candidate
      ? route.stable + " → " + route.candidate
      : "serving " + route.stable;
    $(".strategy", root).textContent = route.strategy ? "strategy: " + route.strategy.replace("_", "-") : "";
    renderSteps($(".steps", root), route);
    renderWeights($(".weights", root), route);
    renderVerdict($(".verdict", root), route);
    renderShadow($(".shadow", root), route);
    const active = ["progressing", "paused", "awaiting-promotion"].includes(route.phase);
    for (const b of root.querySelectorAll("button[data-action]")) {
      const a = b.dataset.action;
      b.disabled =
        (a === "pause" && (route.paused || !active)) ||
        (a === "resume" && !route.paused && route.phase !== "paused") ||
        ((a === "promote" || a === "abort") && !active);
    }
  }

  function renderSteps(box, route) {
    const steps = route.steps || [];
    box.replaceChildren();
    if (!steps.length) {
      box.appendChild(el("span", "steps-none", "no canary steps configured"));
      return;
    }
    const cand = route.candidate ? (route.weights || {})[route.candidate] || 0 : 0;
    const promoted = route.phase === "promoted";
    const active = ["progressing", "paused", "awaiting-promotion"].includes(route.phase);
    const reached = steps.filter((s) => s <= cand).length;
    steps.forEach((s, i) => {
      if (i > 0) box.appendChild(el("span", "link" + (promoted || i < reached ? " done" : "")));
      const step = el("span", "step");
      if (promoted || i < reached - (active ? 1 : 0)) step.classList.add("done");
      else if (active && i === reached - 1) step.classList.add("current");
      step.appendChild(el("span", "knob"));
      step.appendChild(el("span", "label", s + "%"));
      step.title = "step " + (i + 1) + " of " + steps.length + ": candidate at " + s + "%";
      box.appendChild(step);
    });
  }

  function renderWeights(box, route) {
    const weights = Object.entries(route.weights || {}).filter(([, w]) => w > 0);
    const all = Object.entries(route.weights || {});
    const bar = $(".bar", box);
    const legend = $(".legend", box);
    bar.replaceChildren();
    legend.replaceChildren();
    for (const [pool, w] of weights) {
      const seg = el("span", "seg", w >= 8 ? pool + " " + w + "%" : "");
      seg.style.width = w + "%";
      seg.style.background = color(pool);
      bar.appendChild(seg);
    }
    for (const [pool, w] of all) {
      const item = el("span", "item");
      const sw = el("span", "swatch");
      sw.style.background = color(pool);
      item.append(sw, el("span", "", pool + (pool === route.stable ? " (stable)" : "")));
      const value = el("span", "weight", w + "%");
      value.dataset.pool = pool;
      item.appendChild(value);
      legend.appendChild(item);
    }
    if (route.manual) legend.appendChild(el("span", "empty", "weights set by an operator"));
  }

  function renderVerdict(box, route) {
    box.replaceChildren();
    const parts = [];
    if (route.step !== null && route.step !== undefined && (route.steps || []).length) {
      parts.push(el("span", "", "step " + (route.step + 1) + "/" + route.steps.length));
    }
    parts.push(el("span", "", "failed checks " + (route.failed_checks || 0)));
    const v = route.verdict;
    if (v) {
      const cls = v.outcome === "pass" ? "pass" : v.outcome === "fail" ? "fail" : "";
      parts.push(el("span", cls, "last verdict: " + v.outcome));
      const c = v.candidate;
      if (c) {
        const p95 = typeof c.p95 === "number" ? c.p95.toFixed(1) + "ms" : "-";
        parts.push(el("span", "", c.requests + " req, " + c.success_rate.toFixed(1) + "% ok, p95 " + p95));
      }
      const seq = v.sequential;
      if (seq) {
        parts.push(el("span", cls, "sequential " + seq.outcome + " at " + seq.confidence + "% over " +
          seq.candidate_requests + " candidate / " + seq.stable_requests + " stable req"));
      }
      if ((v.reasons || []).length) parts.push(el("span", cls, v.reasons.join("; ")));
    }
    if (route.freeze) {
      parts.push(el("span", "fail", "deployment freeze (" + route.freeze.window + ") until " + route.freeze.until));
    }
    parts.forEach((p, i) => {
      if (i) box.appendChild(document.createTextNode(" · "));
      box.appendChild(p);
    });
  }

  // Shadow traffic: the route's mirror since start and the last shadow
  // interval of its rollout; fields and samples are redacted server-side.
  function renderShadow(box, route) {
    box.replaceChildren();
    const rows = [["mirror", route.mirror], ["shadow interval", route.shadow]];
    for (const [label, s] of rows) {
      if (!s) continue;
      const line = el("div", "");
      const ratio = typeof s.latency_ratio === "number" ? " · latency ×" + s.latency_ratio.toFixed(2) : "";
      line.appendChild(el("span", s.mismatched > 0 ? "fail" : "",
        label + " to " + s.pool + ": " + s.compared + " compared, " + s.mismatched + " differ (" +
        s.mismatch_rate.toFixed(1) + "%)"));
      line.appendChild(document.createTextNode(" · " + s.dropped + " dropped · " + s.errors + " errors" + ratio));
      const fields = (s.fields || []).slice(0, 5).map((f) => f.field + " ×" + f.count);
      if (fields.length) line.appendChild(document.createTextNode(" · " + fields.join(", ")));
      for (const sample of s.samples || []) line.appendChild(el("span", "sample", sample));
      box.appendChild(line);
    }
  }

  // ---- charts -----------------------------------------------------------

  function drawCharts(card, now) {
    for (const canvas of card.el.querySelectorAll("canvas.chart")) {
      const metric = canvas.dataset.metric;
      veerChart(canvas, card.samples, metric, METRICS[metric], now, HISTORY_S, color);
    }
  }

  // ---- actions ----------------------------------------------------------

  async function act(route, action, root) {
    const out = $(".action-result", root);
    out.classList.remove("error");
    out.textContent = action + "…";
    try {
      const reply = await api("POST", "/api/v1/routes/" + encodeURIComponent(route) + "/" + action);
      out.textContent = action + ": done" + (reply.route ? " (now " + reply.route.phase + ")" : "");
      if (reply.route) renderRoute(cards.get(route), reply.route);
    } catch (e) {
      out.classList.add("error");
      out.textContent = action + " refused: " + e.message;
    }
    poll(true);
  }

  // ---- pools and events -------------------------------------------------

  function renderPools(pools) {
    const box = $("#pools");
    box.replaceChildren();
    if (!pools.length) box.appendChild(el("div", "empty", "no pools"));
    for (const pool of pools) {
      const p = el("div", "pool");
      p.dataset.pool = pool.name;
      const name = el("div", "pool-name");
      const sw = el("span", "swatch");
      sw.style.background = color(pool.name);
      name.append(sw, el("span", "", pool.name), el("span", "pool-version", pool.version || ""));
      p.appendChild(name);
      if (pool.dns) {
        const dns = el("div", "pool-dns" + (pool.dns.error ? " failing" : ""),
          "dns " + pool.dns.query + ": " + (pool.dns.error || pool.dns.endpoints + " endpoint(s)"));
        p.appendChild(dns);
      }
      for (const e of pool.endpoints || []) {
        const row = el("div", "endpoint");
        row.dataset.source = e.source || "file";
        const state = e.maintenance ? "maintenance" : e.healthy ? e.in_flight + " in flight" : "unhealthy";
        row.append(
          el("span", "health" + (e.healthy ? "" : " down")),
          el("span", "", e.address),
          el("span", "source", (e.source || "file") + ((e.weight || 1) !== 1 ? " ×" + e.weight : "")),
          el("span", "inflight", state)
        );
        p.appendChild(row);
      }
      box.appendChild(p);
    }
  }

  function renderEvents(events) {
    const body = $("#events");
    body.replaceChildren();
    const recent = events.slice(-100).reverse();
    if (!recent.length) {
      const tr = el("tr");
      tr.appendChild(el("td", "empty", "no events yet"));
      body.appendChild(tr);
    }
    for (const ev of recent) {
      const tr = el("tr");
      const when = new Date(ev.at).toLocaleTimeString([], { hour12: false });
      const kind = el("td", "kind");
      kind.appendChild(el("span", "", ev.phase ? ev.phase : ev.kind));
      tr.append(el("td", "time", when), kind, el("td", "ev-route", ev.route || ""), el("td", "msg", ev.message));
      body.appendChild(tr);
    }
  }

  // ---- start ------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("#token-form").addEventListener("submit", (e) => {
      e.preventDefault();
      token = $("#token").value.trim();
      start();
    });
    start();
  });
})();
