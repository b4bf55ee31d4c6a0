// The delivery dashboard: plain browser JavaScript, no build step. It calls the service's own API over the
// Connect protocol (JSON) as the signed-in caller, and draws with uPlot (served from this origin as well).
// Every value from the API reaches the page through textContent, never as HTML.
"use strict";

const API = "/otp.v1.OtpService/";
const TOKEN_KEY = "otp-dashboard-token";
const SIGN_IN = document.querySelector('meta[name="otp-sign-in"]').content === "sign-in";
const REFRESH_MS = 30_000;
const COLOURS = ["#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4d7c0f", "#be185d"];

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** One unary call, Connect protocol with JSON; the token (if any) as the bearer header. */
async function call(method, request) {
  const headers = { "content-type": "application/json", "connect-protocol-version": "1" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(API + method, { method: "POST", headers, body: JSON.stringify(request) });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(body.code ?? "unknown", body.message ?? `HTTP ${response.status}`);
  return body;
}

/** An element with attributes and children (strings become text nodes); `style` is an object (CSSOM, which the CSP allows). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "style") Object.assign(node.style, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// ---- formatting (proto3 JSON: int64 as strings, zero values omitted, enums by name) ----

const num = (value) => Number(value ?? 0);
const shortEnum = (value, prefix) => (value ?? "").replace(prefix, "").toLowerCase().replaceAll("_", " ");
const channelName = (value) => ({ CHANNEL_SMS: "SMS", CHANNEL_EMAIL: "email", CHANNEL_VOICE: "voice", CHANNEL_PUSH: "push", CHANNEL_WHATSAPP: "WhatsApp" })[value] ?? "—";
const percent = (ratio) => `${(ratio * 100).toFixed(ratio === 0 || ratio === 1 ? 0 : 1)} %`;
const seconds = (duration) => (duration ? parseFloat(duration) : 0);
const time = (timestamp) => (timestamp ? new Date(timestamp).toLocaleString() : "—");
function money(value) {
  if (!value) return "—";
  return `${value.currencyCode} ${(num(value.amountMicros) / 1e6).toFixed(4)}`;
}

// ---- sign-in ----

function showSignIn(error = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  $("board").hidden = true;
  $("controls").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = error;
  $("token").focus();
}

function showBoard() {
  $("sign-in").hidden = true;
  $("controls").hidden = false;
  $("sign-out").hidden = !SIGN_IN;
  $("board").hidden = false;
}

/** An UNAUTHENTICATED answer sends the person back to sign in; anything else is shown where it happened. */
function failed(error, where) {
  if (error instanceof ApiError && error.code === "unauthenticated" && SIGN_IN) showSignIn(`Not signed in: ${error.message}`);
  else where.textContent = error.message;
}

// ---- statistics ----

let refreshing = false;

async function refresh() {
  if (refreshing) return;
  refreshing = true;
  const windowSeconds = Number($("window").value);
  const to = new Date();
  const from = new Date(to.getTime() - windowSeconds * 1000);
  // About 60 buckets, each a whole number of minutes (the API's shortest bucket is one).
  const intervalSeconds = Math.max(60, Math.ceil(windowSeconds / 60 / 60) * 60);
  const window = { from: from.toISOString(), to: to.toISOString() };
  document.body.dataset.stats = "loading";
  try {
    const [series, funnel, countries, totals] = await Promise.all([
      call("GetDeliveryStats", { ...window, groupBy: ["STATS_GROUPING_ROUTE"], interval: `${intervalSeconds}s` }),
      call("GetDeliveryStats", { ...window, groupBy: ["STATS_GROUPING_STEP", "STATS_GROUPING_CHANNEL"] }),
      call("GetDeliveryStats", { ...window, groupBy: ["STATS_GROUPING_COUNTRY", "STATS_GROUPING_STEP"] }),
      call("GetDeliveryStats", window),
    ]);
    renderTotals(totals.rows ?? []);
    renderTimeCharts(series.rows ?? [], from, to, intervalSeconds);
    renderFunnel(funnel.rows ?? []);
    renderCountries(countries.rows ?? []);
    $("status").textContent = `Attempts queued from ${from.toLocaleString()} to ${to.toLocaleString()}; updated ${to.toLocaleTimeString()}.`;
    document.body.dataset.stats = "loaded";
  } catch (error) {
    failed(error, $("status"));
  } finally {
    refreshing = false;
  }
}

function renderTotals(rows) {
  const tiles = $("totals");
  tiles.replaceChildren();
  if (rows.length === 0) {
    tiles.append(el("div", { class: "tile" }, el("b", {}, "0"), el("span", {}, "attempts in this window")));
    return;
  }
  // One row per currency (prices in different currencies are never added up).
  for (const row of rows) {
    const tile = (label, value, id) => el("div", { class: "tile", "data-figure": id }, el("b", {}, value), el("span", {}, label));
    tiles.append(
      tile("attempts", num(row.attempts), "attempts"),
      tile("delivery rate", percent(row.deliveryRate ?? 0), "delivery-rate"),
      tile("receipt latency p50 / p95", `${seconds(row.receiptLatencyP50).toFixed(1)} / ${seconds(row.receiptLatencyP95).toFixed(1)} s`, "latency"),
      tile("approvals", num(row.approved), "approved"),
      tile("fallback rate", percent(row.fallbackRate ?? 0), "fallback-rate"),
      tile("cost", money(row.cost), "cost"),
      tile("cost per approval", money(row.costPerApproval), "cost-per-approval"),
    );
  }
}

/** Rows of one bucket and route (one per currency) added together. */
function byRouteAndBucket(rows, from, intervalSeconds) {
  const routes = new Map();
  for (const row of rows) {
    const bucket = Math.round((new Date(row.bucketStart).getTime() - from.getTime()) / 1000 / intervalSeconds);
    const route = routes.get(row.routeId) ?? new Map();
    const sum = route.get(bucket) ?? { submitted: 0, delivered: 0, p50: 0, p95: 0 };
    sum.submitted += num(row.submitted);
    sum.delivered += num(row.delivered);
    sum.p50 = Math.max(sum.p50, seconds(row.receiptLatencyP50));
    sum.p95 = Math.max(sum.p95, seconds(row.receiptLatencyP95));
    route.set(bucket, sum);
    routes.set(row.routeId, route);
  }
  return routes;
}

const charts = new Map();

function renderTimeCharts(rows, from, to, intervalSeconds) {
  const buckets = Math.ceil((to.getTime() - from.getTime()) / 1000 / intervalSeconds);
  const xs = Array.from({ length: buckets }, (_, i) => from.getTime() / 1000 + i * intervalSeconds);
  const routes = [...byRouteAndBucket(rows, from, intervalSeconds)].sort(([a], [b]) => a.localeCompare(b));
  const values = (route, pick) => xs.map((_, i) => (route.has(i) ? pick(route.get(i)) : null));
  drawChart("delivery-chart", xs, {
    series: routes.map(([id, route], i) => ({ label: id, stroke: COLOURS[i % COLOURS.length], points: { show: true }, data: values(route, (s) => (s.submitted === 0 ? null : s.delivered / s.submitted)) })),
    y: { range: [0, 1], format: (v) => `${Math.round(v * 100)} %` },
  });
  drawChart("latency-chart", xs, {
    series: routes.flatMap(([id, route], i) => [
      { label: `${id} p50`, stroke: COLOURS[i % COLOURS.length], points: { show: true }, data: values(route, (s) => (s.delivered === 0 ? null : s.p50)) },
      { label: `${id} p95`, stroke: COLOURS[i % COLOURS.length], dash: [6, 4], points: { show: true }, data: values(route, (s) => (s.delivered === 0 ? null : s.p95)) },
    ]),
    y: { format: (v) => `${v} s` },
  });
}

function drawChart(id, xs, { series, y }) {
  const target = $(id);
  charts.get(id)?.destroy();
  charts.delete(id);
  target.replaceChildren();
  const points = series.reduce((n, s) => n + s.data.filter((v) => v !== null).length, 0);
  target.dataset.series = series.map((s) => s.label).join(",");
  target.dataset.points = String(points);
  if (points === 0) {
    target.append(el("p", { class: "empty" }, "No submitted attempts in this window."));
    return;
  }
  const options = {
    width: Math.max(320, target.clientWidth),
    height: 240,
    scales: { x: { time: true }, y: y.range ? { range: y.range } : { auto: true } },
    series: [{}, ...series.map(({ data, ...s }) => ({ ...s, width: 2, spanGaps: false }))],
    axes: [{}, { values: (_, ticks) => ticks.map(y.format), size: 60 }],
  };
  charts.set(id, new uPlot(options, [xs, ...series.map((s) => s.data)], target));
}

function renderFunnel(rows) {
  // Step 0 is the first message: its attempts are the verifications begun.
  const first = rows.filter((r) => num(r.stepIndex) === 0);
  const begun = first.reduce((n, r) => n + num(r.attempts), 0);
  const delivered = first.reduce((n, r) => n + num(r.delivered), 0);
  const escalated = first.reduce((n, r) => n + num(r.escalated), 0);
  const firstChannels = [...new Set(first.map((r) => channelName(r.channel)))].join(" / ") || "first message";
  const approvedBy = new Map();
  for (const row of rows) approvedBy.set(row.channel, (approvedBy.get(row.channel) ?? 0) + num(row.approved));
  const stages = [
    ["begun", "Verifications begun", begun],
    ["delivered", `First message delivered (${firstChannels})`, delivered],
    ["escalated", "Fell back to a later channel", escalated],
    ...["CHANNEL_SMS", "CHANNEL_EMAIL", "CHANNEL_VOICE", "CHANNEL_PUSH"]
      .filter((c) => approvedBy.get(c))
      .map((c) => [`approved-${channelName(c).toLowerCase()}`, `Approved by ${channelName(c)}`, approvedBy.get(c)]),
  ];
  $("funnel").replaceChildren(
    ...stages.map(([id, label, count]) =>
      el(
        "div",
        { class: `funnel-row ${id.startsWith("approved") ? "approved" : id}`, "data-stage": id },
        el("span", {}, label),
        el("div", {}, el("div", { class: "bar", style: { width: `${begun === 0 ? 0 : (100 * count) / begun}%` } })),
        el("span", { class: "count" }, count),
      ),
    ),
  );
}

function renderCountries(rows) {
  const countries = new Map();
  for (const row of rows) {
    const c = countries.get(row.country ?? "") ?? { begun: 0, submitted: 0, delivered: 0, approved: 0 };
    if (num(row.stepIndex) === 0) c.begun += num(row.attempts);
    c.submitted += num(row.submitted);
    c.delivered += num(row.delivered);
    c.approved += num(row.approved);
    countries.set(row.country ?? "", c);
  }
  const sorted = [...countries].sort(([, a], [, b]) => b.begun - a.begun);
  $("countries").tBodies[0].replaceChildren(
    ...sorted.map(([country, c]) => {
      const conversion = c.begun === 0 ? 0 : c.approved / c.begun;
      return el(
        "tr",
        { "data-country": country },
        el("td", {}, country || "— (no phone)"),
        el("td", { class: "num" }, c.begun),
        el("td", { class: "num" }, c.submitted === 0 ? "—" : percent(c.delivered / c.submitted)),
        el("td", { class: "num" }, c.approved),
        el("td", { class: "num" }, el("span", { class: "meter", style: { width: `${Math.round(conversion * 60)}px` } }), percent(conversion)),
      );
    }),
  );
  if (sorted.length === 0) $("countries").tBodies[0].append(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "No verifications in this window.")));
}

// ---- lookup ----

async function lookUp(verificationId) {
  $("lookup-error").textContent = "";
  $("verification").hidden = true;
  try {
    const { verification, events = [] } = await call("GetVerification", { verificationId });
    const summary = [
      ["Verification", verification.verificationId],
      ["Status", shortEnum(verification.status, "VERIFICATION_STATUS_")],
      ["Policy", verification.policy ?? "—"],
      ["Created", time(verification.createdAt)],
      ["Expires", time(verification.expiresAt)],
      ["Approved", time(verification.approvedAt)],
      ["Trace id", el("code", { id: "trace-id" }, verification.traceId ?? "")],
    ];
    $("verification-summary").replaceChildren(...summary.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]));
    $("attempts").tBodies[0].replaceChildren(
      ...(verification.attempts ?? []).map((a) =>
        el(
          "tr",
          { "data-attempt": a.attemptId },
          el("td", { class: "num" }, num(a.stepIndex)),
          el("td", {}, channelName(a.channel)),
          el("td", {}, a.routeId ?? ""),
          el("td", {}, shortEnum(a.status, "ATTEMPT_STATUS_")),
          el("td", {}, el("code", {}, a.providerMessageId ?? "")),
          el("td", {}, time(a.submittedAt)),
          el("td", {}, time(a.completedAt)),
          el("td", { class: "num" }, money(a.price)),
        ),
      ),
    );
    $("timeline").tBodies[0].replaceChildren(
      ...events.map((e) =>
        el(
          "tr",
          { "data-kind": e.kind },
          el("td", { class: "num" }, num(e.sequence)),
          el("td", {}, time(e.occurredAt)),
          el("td", {}, shortEnum(e.kind, "DELIVERY_EVENT_KIND_")),
          el("td", {}, e.channel ? channelName(e.channel) : ""),
          el("td", {}, e.routeId ?? ""),
          el("td", {}, el("code", {}, e.providerMessageId ?? "")),
          el("td", { class: "num" }, e.latency ? `${seconds(e.latency).toFixed(2)} s` : ""),
          el("td", {}, [e.reason, e.providerErrorCode].filter(Boolean).join(" · ")),
        ),
      ),
    );
    $("verification").hidden = false;
  } catch (error) {
    failed(error, $("lookup-error"));
  }
}

// ---- wiring ----

$("sign-in").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  showBoard();
  refresh();
});
$("sign-out").addEventListener("click", () => showSignIn());
$("controls").addEventListener("submit", (event) => {
  event.preventDefault();
  refresh();
});
$("window").addEventListener("change", () => refresh());
$("lookup").addEventListener("submit", (event) => {
  event.preventDefault();
  lookUp($("lookup-id").value.trim());
});
setInterval(() => {
  if (!$("board").hidden && document.visibilityState === "visible") refresh();
}, REFRESH_MS);

if (SIGN_IN && !sessionStorage.getItem(TOKEN_KEY)) showSignIn();
else {
  showBoard();
  refresh();
}
