#!/usr/bin/env node
// Writes deploy/k8s/base/prometheusrule.yaml from deploy/prometheus/allot-rules.yaml (the source of
// truth), keeping the rules' comments. With --check, only compares and exits 1 when they differ.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const rulesPath = resolve(root, "deploy/prometheus/allot-rules.yaml");
const outPath = resolve(root, "deploy/k8s/base/prometheusrule.yaml");

export function renderPrometheusRule(rulesText) {
  const rules = YAML.parseDocument(rulesText);
  if (rules.errors.length) throw new Error(`${rulesPath}: ${rules.errors[0].message}`);
  const groups = rules.get("groups", true);
  if (!groups) throw new Error(`${rulesPath}: no 'groups'`);
  const doc = new YAML.Document({
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: {
      name: "allot-server",
      labels: { "app.kubernetes.io/name": "allot", "app.kubernetes.io/component": "server" },
    },
    spec: { groups: null },
  });
  doc.setIn(["spec", "groups"], groups);
  doc.commentBefore =
    " GENERATED from deploy/prometheus/allot-rules.yaml by deploy/checks/sync-prometheusrule.mjs.\n" +
    " Do not edit: edit the rules file and run `node deploy/checks/sync-prometheusrule.mjs`.\n" +
    " A prometheus-operator Prometheus picks this up when its ruleSelector matches these labels.";
  return doc.toString({ lineWidth: 0 });
}

const want = renderPrometheusRule(readFileSync(rulesPath, "utf8"));
if (process.argv.includes("--check")) {
  let have = "";
  try { have = readFileSync(outPath, "utf8"); } catch { /* missing counts as different */ }
  if (have !== want) {
    console.error(`FAIL: ${outPath} is not generated from ${rulesPath}; run: node deploy/checks/sync-prometheusrule.mjs`);
    process.exit(1);
  }
  console.log("prometheusrule.yaml matches allot-rules.yaml");
} else {
  writeFileSync(outPath, want);
  console.log(`wrote ${outPath}`);
}
