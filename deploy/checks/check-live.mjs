#!/usr/bin/env node
// Checks against a running allot-server and a real Prometheus scraping it.
//
//   node check-live.mjs metrics METRICS.txt METRICS_USED.json
//       Every metric name the rules and the dashboard read must be a sample name in the server's
//       /metrics output (histograms: NAME_bucket, NAME_count, NAME_sum).
//   node check-live.mjs prometheus PROM_URL DASHBOARD_QUERIES.json TIMEOUT_S
//       Waits until Prometheus returns data for a request rate and a p99 from the server's
//       histogram, then checks that every alert rule evaluates without error and that every
//       dashboard query runs (with $__rate_interval = 5s).
import { readFileSync } from "node:fs";
import { substituteGrafanaVariables } from "./lib/promql.mjs";

// Series Prometheus makes itself for every target.
const PROMETHEUS_SYNTHETIC = new Set(["up", "scrape_duration_seconds", "scrape_samples_scraped",
  "scrape_samples_post_metric_relabeling", "scrape_series_added"]);

function die(msg) {
  console.error(`check-live: FAIL: ${msg}`);
  process.exit(1);
}

function checkMetrics(metricsFile, usedFile) {
  const text = readFileSync(metricsFile, "utf8");
  const types = new Map();
  const samples = new Set();
  for (const line of text.split("\n")) {
    const t = /^# TYPE (\S+) (\S+)/.exec(line);
    if (t) { types.set(t[1], t[2]); continue; }
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (m) samples.add(m[1]);
  }
  const used = JSON.parse(readFileSync(usedFile, "utf8"));
  const problems = [];
  for (const [name, where] of Object.entries(used)) {
    if (samples.has(name) || PROMETHEUS_SYNTHETIC.has(name)) continue;
    let hint = "not exported by the server";
    if (types.get(name) === "histogram" || types.get(name) === "summary") {
      hint = `is a ${types.get(name)}: read ${name}_bucket, ${name}_count or ${name}_sum`;
    } else {
      const base = name.replace(/_(bucket|count|sum)$/, "");
      if (base !== name && types.has(base)) hint = `${base} is a ${types.get(base)}, which has no ${name.slice(base.length)} series`;
      else if (types.has(name)) hint = "declared (# TYPE) but has no series yet: drive the server so it gets one";
    }
    problems.push(`${name} (${where.join("; ")}): ${hint}`);
  }
  if (problems.length) die(`metric names used but missing from /metrics:\n  ${problems.join("\n  ")}`);
  const families = [...types.keys()].filter((n) => n.startsWith("allot_"));
  const familyUsed = (f) => Object.keys(used).some((u) => u === f || u.replace(/_(bucket|count|sum)$/, "") === f);
  const unused = families.filter((f) => !familyUsed(f));
  console.log(`check-live: all ${Object.keys(used).length} metric names used by rules and dashboard are exported` +
    (unused.length ? ` (exported but not shown or alerted on: ${unused.join(", ")})` : ""));
}

async function query(base, expr) {
  const url = `${base}/api/v1/query?query=${encodeURIComponent(expr)}`;
  const res = await fetch(url);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`${expr}: ${body.errorType}: ${body.error}`);
  return body.data.result;
}

async function checkPrometheus(base, queriesFile, timeoutS) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const must = [
    'rate(allot_rpc_duration_seconds_count[5s])',
    'histogram_quantile(0.99, sum by (le) (rate(allot_rpc_duration_seconds_bucket[5s])))',
  ];
  const t0 = Date.now();
  let last = "";
  for (;;) {
    try {
      const results = await Promise.all(must.map((q) => query(base, q)));
      const ok = results.every((r) => r.length > 0 && r.some((s) => Number.isFinite(Number(s.value[1]))));
      if (ok) {
        console.log(`check-live: Prometheus has data after ${((Date.now() - t0) / 1000).toFixed(1)} s:`);
        for (const [i, r] of results.entries()) {
          console.log(`  ${must[i]} -> ${r.map((s) => `${s.metric.method ?? ""}${s.metric.code ? "/" + s.metric.code : ""} ${Number(s.value[1]).toPrecision(3)}`).join(", ")}`);
        }
        break;
      }
      last = "no data yet";
    } catch (e) {
      last = e.message;
    }
    if (Date.now() - t0 > timeoutS * 1000) die(`Prometheus at ${base} returned no data within ${timeoutS} s (${last})`);
    await sleep(500);
  }

  // The target is up and every rule has been evaluated without error.
  const up = await query(base, 'up{job="allot-server"}');
  if (!up.length || up.some((s) => s.value[1] !== "1")) die(`up{job="allot-server"} is ${JSON.stringify(up)}`);
  for (;;) {
    const body = await (await fetch(`${base}/api/v1/rules`)).json();
    const rules = body.data.groups.flatMap((g) => g.rules);
    const bad = rules.filter((r) => r.health === "err");
    if (bad.length) die(`rules failing on live data:\n  ${bad.map((r) => `${r.name}: ${r.lastError}`).join("\n  ")}`);
    if (rules.length && rules.every((r) => r.health === "ok")) {
      const firing = rules.filter((r) => r.state && r.state !== "inactive").map((r) => `${r.name}(${r.state})`);
      console.log(`check-live: ${rules.length} alert rules evaluate on live data` +
        (firing.length ? `; not inactive: ${firing.join(", ")}` : "; none pending or firing"));
      break;
    }
    if (Date.now() - t0 > timeoutS * 1000) die("alert rules were not evaluated in time");
    await sleep(500);
  }

  // Every dashboard query runs; most return data.
  const queries = JSON.parse(readFileSync(queriesFile, "utf8"));
  const empty = [];
  for (const q of queries) {
    let r;
    try {
      r = await query(base, substituteGrafanaVariables(q.expr, { rateInterval: "5s" }));
    } catch (e) {
      die(`dashboard panel '${q.panel}' ${q.refId}: ${e.message}`);
    }
    if (r.length === 0) empty.push(`${q.panel} ${q.refId}`);
  }
  console.log(`check-live: ${queries.length} dashboard queries run on live data` +
    (empty.length ? `; empty (no such events in the run): ${empty.join(", ")}` : "; all returned data"));
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "metrics" && args.length === 2) checkMetrics(...args);
else if (mode === "prometheus" && args.length === 3) await checkPrometheus(args[0], args[1], Number(args[2]));
else { console.error("usage: check-live.mjs metrics METRICS.txt USED.json | prometheus URL QUERIES.json TIMEOUT_S"); process.exit(2); }
