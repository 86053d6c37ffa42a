// The shoal dashboard: polls the control plane's /dashboard/api/ and draws what it answers.
// The server does the arithmetic (rates, health, layout: telemetry/graph.py); this file only
// turns JSON into HTML and SVG. Two views, chosen by the URL's hash:
//   #/                          service graph, proxies' sync state, config errors
//   #/workload/NAMESPACE/NAME   one workload's golden signals over time
"use strict";

const POLL_MS = 1000;
const NODE_W = 170;
const NODE_H = 54;
const SVG_NS = "http://www.w3.org/2000/svg";

// -- small helpers ----------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
  }
  return node;
}

const fmtRps = (v) => (v === null || v === undefined ? "-" : `${v.toFixed(1)} rps`);
const fmtPct = (v) => (v === null || v === undefined ? "-" : `${(v * 100).toFixed(1)}%`);
const fmtMs = (v) => (v === null || v === undefined ? "-" : `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ms`);

function table(node, headers, rows, emptyText) {
  node.replaceChildren(el("tr", {}, headers.map((h) => el("th", {}, h))));
  if (!rows.length) node.append(el("tr", {}, el("td", { colspan: headers.length, class: "empty" }, emptyText)));
  for (const row of rows) node.append(row);
}

async function getJSON(path) {
  const resp = await fetch(path, { cache: "no-store" });
  if (!resp.ok) throw new Error(`${path}: HTTP ${resp.status}`);
  return resp.json();
}

// -- the service graph ------------------------------------------------------------------------

function lock(x, y) {
  // a padlock: shackle arc over a filled body
  return svg("g", { class: "lock", transform: `translate(${x},${y})` },
    svg("path", { d: "M2,-3 v-2 a3,3 0 0 1 6,0 v2" }),
    svg("rect", { x: 0, y: -3, width: 10, height: 7, rx: 1 }));
}

function edgeLabel(e) {
  // two short lines: fits between two columns of boxes
  if (e.rps === null) return [`${e.requests} requests`, "measuring…"];
  if (e.health === "idle") return ["idle", ""];
  return [fmtRps(e.rps), `${fmtPct(e.success)} · p99 ${fmtMs(e.p99)}`];
}

function crosses(a, b, nodes) {
  // does the straight line from a to b pass through another node's box?
  for (const n of nodes.values()) {
    if (n === a || n === b || n.x <= a.x || n.x >= b.x) continue;
    const y = a.y + ((b.y - a.y) * (n.x - a.x)) / (b.x - a.x);
    if (Math.abs(y - n.y) < NODE_H) return true;
  }
  return false;
}

function drawEdge(e, nodes) {
  const a = nodes.get(e.src), b = nodes.get(e.dst);
  if (!a || !b) return null;
  const x1 = a.x + NODE_W / 2, y1 = a.y, x2 = b.x - NODE_W / 2, y2 = b.y;
  // callers sit left of callees; a call back (or within a column) bends below the boxes, one
  // that would cross a box on its way arcs above it
  const forward = x2 > x1;
  const bend = forward ? (x2 - x1) / 2 : NODE_W;
  const dy = !forward ? NODE_H : crosses(a, b, nodes) ? -NODE_H * 1.4 : 0;
  const d = `M${x1},${y1} C${x1 + bend},${y1 + dy} ${x2 - bend},${y2 + dy} ${x2},${y2}`;
  // the curve's midpoint (t = 1/2 of the cubic), a little above it
  const mx = (x1 + 3 * (x1 + bend) + 3 * (x2 - bend) + x2) / 8, my = (y1 + y2) / 2 + 0.75 * dy - 6;
  const [top, bottom] = edgeLabel(e);
  return svg("g", { class: `edge health-${e.health}`, "data-src": e.src, "data-dst": e.dst,
                    "data-health": e.health, "data-mtls": e.mtls },
    svg("title", {}, `${e.src} → ${e.dst}: ${top}, ${bottom}${e.mtls ? " (mutual TLS)" : ""}`),
    svg("path", { d, "marker-end": `url(#arrow-${e.health})` }),
    e.mtls ? lock(mx - top.length * 3 - 16, my - 16) : null,
    svg("text", { x: mx, y: my - 13, "text-anchor": "middle" }, top),
    svg("text", { x: mx, y: my, "text-anchor": "middle" }, bottom));
}

function drawNode(n) {
  const link = n.kind === "workload" || n.kind === "gateway";
  const sub = [n.services.length ? `svc ${n.services.join(", ")}` : n.kind,
               n.replicas ? `${n.replicas} ${n.replicas === 1 ? "replica" : "replicas"}` : null];
  const g = svg("g", { class: `node kind-${n.kind} health-${n.health}${link ? " link" : ""}`,
                       "data-id": n.id, transform: `translate(${n.x - NODE_W / 2},${n.y - NODE_H / 2})` },
    svg("title", {}, `${n.id}: ${fmtRps(n.rps)} served, success ${fmtPct(n.success)}, p99 ${fmtMs(n.p99)}`),
    svg("rect", { width: NODE_W, height: NODE_H }),
    svg("text", { class: "name", x: 10, y: 22 }, n.name),
    svg("text", { class: "sub", x: 10, y: 40 }, sub.filter(Boolean).join(" · ")));
  if (link) g.addEventListener("click", () => { location.hash = `#/workload/${n.id}`; });
  return g;
}

function renderGraph(graph) {
  const box = document.getElementById("graph");
  box.setAttribute("width", Math.max(graph.width, 400));
  box.setAttribute("height", Math.max(graph.height, 120));
  const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
  const markers = ["ok", "degraded", "failing", "idle"].map((h) =>
    svg("marker", { id: `arrow-${h}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7,
                    markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L10,5 L0,10 z", fill: `var(--${h})` })));
  const edges = graph.edges.map((e) => drawEdge(e, nodes)).filter(Boolean);
  box.replaceChildren(svg("defs", {}, markers), ...edges, ...graph.nodes.map(drawNode));
  document.getElementById("window").textContent = graph.window_s
    ? `(last ${graph.window_s.toFixed(0)} s)` : "(measuring…)";
}

// -- sync state and config errors -------------------------------------------------------------

function syncCell(t) {
  if (!t) return el("td", {}, "");
  const title = `sent ${t.sent || "-"}, acked ${t.acked || "-"}`;
  if (t.state === "nack") return el("td", { class: "state state-nack", title }, `NACK ×${t.nacks}`);
  if (t.state === "pending") return el("td", { class: "state state-pending", title }, `lag ${t.lag_ms} ms`);
  const took = t.converged_ms === null ? "" : ` ${fmtMs(t.converged_ms)}`;
  return el("td", { class: "state state-synced", title }, `synced${took}`,
    t.nacks ? ` (${t.nacks} NACK)` : "");
}

function podName(node) {
  // "sidecar~IP~POD.NAMESPACE~DOMAIN" -> POD; the whole id is the cell's tooltip
  const parts = node.split("~");
  return parts.length === 4 ? parts[2].split(".")[0] : node;
}

function syncRows(sync) {
  const rows = [];
  for (const r of sync.rows) {
    const byType = new Map(r.types.map((t) => [t.type, t]));
    rows.push(el("tr", { class: `proxy state-${r.state}`, "data-node": r.node },
      el("td", { title: r.node }, podName(r.node)), el("td", {}, `${r.namespace}/${r.workload}`),
      sync.types.map((k) => syncCell(byType.get(k)))));
    for (const t of r.types.filter((t) => t.error)) {
      rows.push(el("tr", { class: `nack-detail${t.state === "nack" ? "" : " past"}`, "data-node": r.node },
        el("td", { colspan: sync.types.length + 2 },
          `${t.type.toUpperCase()} ${t.state === "nack" ? "NACK" : "last NACK"}: ${t.error}`)));
    }
  }
  return rows;
}

function renderSync(node, sync) {
  table(node, ["proxy", "workload", ...sync.types.map((t) => t.toUpperCase())], syncRows(sync),
    "No proxy connected.");
}

function renderErrors(errors) {
  const rows = errors.map((e) => el("tr", { class: "config-error" },
    el("td", { class: "where" }, `${e.file || "?"}${e.line ? `:${e.line}` : ""}`),
    el("td", { class: "field" }, e.field || ""),
    el("td", {}, [e.kind, e.name].filter(Boolean).join(" ")),
    el("td", {}, e.message)));
  table(document.getElementById("errors"), ["file:line", "field", "resource", "error"], rows,
    "No config errors: every file is in force.");
}

// -- one workload -----------------------------------------------------------------------------

function chart(title, points, series, fmt) {
  const W = 320, H = 110, P = 24;
  const ts = points.map((p) => p.t);
  const values = points.flatMap((p) => series.map((s) => s.get(p))).filter((v) => v !== null);
  const max = Math.max(...values, 0) || 1;
  const t0 = Math.min(...ts), t1 = Math.max(...ts);
  const x = (t) => P + ((t - t0) / Math.max(t1 - t0, 1)) * (W - 2 * P);
  const y = (v) => H - P - (v / max) * (H - 2 * P);
  const lines = series.map((s, i) => {
    const pts = points.filter((p) => s.get(p) !== null).map((p) => `${x(p.t).toFixed(1)},${y(s.get(p)).toFixed(1)}`);
    return svg("polyline", { class: `s${i}`, points: pts.join(" ") });
  });
  return el("div", { class: "chart", "data-chart": title },
    el("h4", {}, title, series.length > 1
      ? series.map((s, i) => el("span", { class: `k${i}` }, ` ${s.name}`)) : null),
    svg("svg", { width: W, height: H },
      svg("line", { class: "axis", x1: P, y1: H - P, x2: W - P, y2: H - P }),
      svg("text", { x: 2, y: P }, fmt(max)), svg("text", { x: 2, y: H - P }, fmt(0)),
      svg("text", { x: P, y: H - 6 }, points.length ? new Date(t0 * 1000).toLocaleTimeString() : ""),
      svg("text", { x: W - P, y: H - 6, "text-anchor": "end" }, points.length ? "now" : "no data yet"),
      lines));
}

function edgeRows(edges, other) {
  return edges.map((e) => el("tr", { class: `health-${e.health}` },
    el("td", {}, e[other]), el("td", { class: "num" }, fmtRps(e.rps)),
    el("td", { class: "num" }, fmtPct(e.success)), el("td", { class: "num" }, fmtMs(e.p99)),
    el("td", {}, e.mtls ? "mutual TLS" : "plaintext")));
}

function renderWorkload(data) {
  const n = data.node;
  document.getElementById("wl-title").textContent = data.id;
  document.getElementById("wl-summary").textContent = n
    ? `${n.replicas} ${n.replicas === 1 ? "replica" : "replicas"} · serving ${fmtRps(n.rps)} · success ${fmtPct(n.success)} · p99 ${fmtMs(n.p99)}`
    : "not in the mesh now";
  const pts = data.points;
  document.getElementById("charts").replaceChildren(
    chart("requests/s", pts, [{ name: "rps", get: (p) => p.rps }], (v) => v.toFixed(1)),
    chart("success", pts, [{ name: "success", get: (p) => p.success }], (v) => `${(v * 100).toFixed(0)}%`),
    chart("latency", pts, [{ name: "p50", get: (p) => p.p50 }, { name: "p99", get: (p) => p.p99 }], fmtMs));
  const heads = ["", "rps", "success", "p99", "security"];
  table(document.getElementById("wl-inbound"), ["from", ...heads.slice(1)], edgeRows(data.inbound, "src"), "No callers.");
  table(document.getElementById("wl-outbound"), ["to", ...heads.slice(1)], edgeRows(data.outbound, "dst"), "Calls nothing.");
  const types = [...new Set(data.proxies.flatMap((r) => r.types.map((t) => t.type)))];
  renderSync(document.getElementById("wl-sync"), { types, rows: data.proxies });
}

// -- the loop ---------------------------------------------------------------------------------

let timer = null;

async function refresh() {
  clearTimeout(timer);
  const m = location.hash.match(/^#\/workload\/([^/]+)\/([^/]+)$/);
  document.getElementById("overview").hidden = Boolean(m);
  document.getElementById("workload").hidden = !m;
  const status = document.getElementById("status");
  let notes = "";
  try {
    if (m) {
      renderWorkload(await getJSON(`api/workload/${m[1]}/${m[2]}`));
    } else {
      const data = await getJSON("api/overview");
      renderGraph(data.graph);
      renderSync(document.getElementById("sync"), data.sync);
      renderErrors(data.errors);
      const unread = Object.keys(data.scrape_errors).length;
      if (unread) notes += ` · metrics of ${unread} proxies unreadable`;
      if (data.unsampled) notes += ` · ${data.unsampled} proxies not sampled (over the limit)`;
    }
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}${notes}`;
  } catch (err) {
    status.textContent = `control plane unreachable (${err.message}); retrying`;
  }
  timer = setTimeout(refresh, POLL_MS);
}

window.addEventListener("hashchange", refresh);
refresh();
