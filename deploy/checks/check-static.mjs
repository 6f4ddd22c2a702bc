#!/usr/bin/env node
// Static checks of deploy/: rendered Kubernetes objects, alert rules, Grafana dashboard, Dockerfile.
//
//   node check-static.mjs WORK_DIR RENDERED.yaml...
//
// Runtime validation happens here (kubernetes-models' generated validators: types, required
// fields, formats, enums). Unknown fields are caught by TypeScript: this script writes
// WORK_DIR/ts/*.ts, where every object literal `satisfies` its API type, and run_all.sh runs tsc on
// it (excess-property checking rejects any field the API type does not declare). It also writes
//   WORK_DIR/dashboard-exprs.rules.yaml  every dashboard query as a recording rule, for promtool
//   WORK_DIR/dashboard-queries.json      the same queries, for the live Prometheus check
//   WORK_DIR/metrics-used.json           metric name -> where it is used (rules, dashboard)
//   WORK_DIR/configs/<name>.yaml         the allot.yaml of each rendered ConfigMap
//   WORK_DIR/probe-services.txt          grpc.health.v1 service names the probes ask for
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, posix, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import YAML from "yaml";
import { metricNames, rangeSelectors, substituteGrafanaVariables, variableQueryMetrics } from "./lib/promql.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const [workDir, ...renderedFiles] = process.argv.slice(2);
if (!workDir || renderedFiles.length === 0) {
  console.error("usage: check-static.mjs WORK_DIR RENDERED.yaml...");
  process.exit(2);
}
const tsDir = resolve(workDir, "ts");
mkdirSync(tsDir, { recursive: true });
mkdirSync(resolve(workDir, "configs"), { recursive: true });

const failures = [];
const fail = (where, msg) => failures.push(`${where}: ${msg}`);
const check = (cond, where, msg) => { if (!cond) fail(where, msg); return cond; };
const read = (p) => readFileSync(resolve(root, p), "utf8");

// ---------------------------------------------------------------- source of truth: the config
const configText = read("config/allot.yaml");
const config = YAML.parse(configText);
for (const dir of ["deploy/k8s/base", "deploy/k8s/training"]) {
  check(read(`${dir}/config/allot.yaml`) === configText, `${dir}/config/allot.yaml`,
    `differs from config/allot.yaml; run: cp config/allot.yaml ${dir}/config/allot.yaml`);
}

// ---------------------------------------------------------------- Dockerfile facts
const dockerfile = read("Dockerfile");
const stages = dockerfile.split(/^FROM\s+/m).slice(1).map((s) => "FROM " + s);
const runtime = stages.at(-1) ?? "";
const instr = (text, name) => [...text.matchAll(new RegExp(`^${name}\\s+(.+)$`, "gm"))].map((m) => m[1].trim());
check(/^FROM debian:12 AS build\b/m.test(stages[0] ?? ""), "Dockerfile", "first stage must be `FROM debian:12 AS build`");
check(/^FROM debian:12-slim\b/.test(runtime), "Dockerfile", "runtime stage must be FROM debian:12-slim");
const dockerUser = instr(runtime, "USER").at(-1) ?? "";
check(/^[1-9][0-9]*(:[0-9]+)?$/.test(dockerUser), "Dockerfile", `USER must be a numeric non-root uid, got '${dockerUser}'`);
const dockerUid = Number(dockerUser.split(":")[0]);
const exposed = instr(runtime, "EXPOSE").flatMap((l) => l.split(/\s+/)).map((p) => Number(p.split("/")[0]));
let entrypoint = [];
try { entrypoint = JSON.parse(instr(runtime, "ENTRYPOINT").at(-1) ?? "[]"); } catch { fail("Dockerfile", "ENTRYPOINT must be a JSON array"); }
check(instr(runtime, "VOLUME").some((v) => v.includes("/var/lib/allot/models")), "Dockerfile", "VOLUME /var/lib/allot/models missing");
check(/^COPY config\/allot\.yaml \/etc\/allot\/allot\.yaml$/m.test(runtime), "Dockerfile", "runtime stage must COPY config/allot.yaml /etc/allot/allot.yaml");

// ---------------------------------------------------------------- alert rules
const rulesText = read("deploy/prometheus/allot-rules.yaml");
const rules = YAML.parse(rulesText);
const used = new Map(); // metric -> Set(where)
// Series the rules record are Prometheus's own, not the server's.
const recorded = new Set((rules.groups ?? []).flatMap((g) => g.rules ?? []).map((r) => r.record).filter(Boolean));
const use = (names, where) => { for (const n of names) { if (!used.has(n)) used.set(n, new Set()); used.get(n).add(where); } };
for (const g of rules.groups ?? []) {
  for (const r of g.rules ?? []) {
    const name = r.alert ?? r.record;
    check(!String(r.expr).includes("$__"), `rule ${name}`, "Grafana variables ($__...) do not belong in rules");
    use(metricNames(String(r.expr)), `rule ${name}`);
  }
}
{
  const lambdaRule = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === "AllotLambdaPinnedAtBound");
  if (check(lambdaRule, "allot-rules.yaml", "alert AllotLambdaPinnedAtBound missing")) {
    const lo = /allot_lambda\s*<=\s*([0-9.eE+-]+)/.exec(lambdaRule.expr);
    const hi = /allot_lambda\s*>=\s*([0-9.eE+-]+)/.exec(lambdaRule.expr);
    check(lo && Number(lo[1]) === Number(config.lambda.min), "AllotLambdaPinnedAtBound",
      `lower bound must equal config lambda.min (${config.lambda.min})`);
    check(hi && Number(hi[1]) === Number(config.lambda.max), "AllotLambdaPinnedAtBound",
      `upper bound must equal config lambda.max (${config.lambda.max})`);
  }
}

// ---------------------------------------------------------------- Kubernetes objects
function modulePath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  if (group === "monitoring.coreos.com") return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}
const tsLines = [];
const tsImports = new Map();
function tsType(apiVersion, kind) {
  const mod = modulePath(apiVersion, kind);
  if (!tsImports.has(mod)) tsImports.set(mod, `T${tsImports.size}`);
  return { alias: tsImports.get(mod), kind };
}
const subset = (sel = {}, labels = {}) => Object.entries(sel).every(([k, v]) => labels[k] === v);
const probeServices = new Set();
const serverSets = [], trainingSets = []; // facts for the checks across sets

for (const file of renderedFiles) {
  const set = basename(file).replace(/\.ya?ml$/, "");
  const docs = YAML.parseAllDocuments(readFileSync(file, "utf8"));
  const objs = [];
  for (const d of docs) {
    if (d.errors.length) { fail(file, d.errors[0].message); continue; }
    const o = d.toJS();
    if (o) objs.push(o);
  }
  check(objs.length > 0, file, "rendered no objects");
  for (const [i, o] of objs.entries()) {
    const where = `${set}: ${o.kind}/${o.metadata?.name}`;
    if (!check(o.apiVersion && o.kind && o.metadata?.name, `${set}[${i}]`, "apiVersion, kind and metadata.name are required")) continue;
    let Model;
    try {
      Model = (await import(modulePath(o.apiVersion, o.kind)))[o.kind];
    } catch (e) {
      fail(where, `no schema for ${o.apiVersion} ${o.kind} (${e.code ?? e.message})`);
      continue;
    }
    try { new Model(structuredClone(o)).validate(); } catch (e) { fail(where, `schema: ${e.message}`); }
    const t = tsType(o.apiVersion, o.kind);
    tsLines.push(`// ${file}: ${o.kind}/${o.metadata.name}`,
      `export const ${set.replace(/\W/g, "_")}_${i} = ${JSON.stringify(o, null, 2)} satisfies ${t.alias}.I${t.kind};`);
  }

  // --- how the objects fit together: a server set has a Deployment, a training set a Job
  const hasDeployment = objs.some((o) => o.kind === "Deployment"), hasJob = objs.some((o) => o.kind === "Job");
  if (hasDeployment) checkServerSet(set, objs);
  if (hasJob) checkTrainingSet(set, objs);
  check(hasDeployment !== hasJob, set, "must render either a Deployment (server) or a Job (training)");
}

function one(set, objs, kind) {
  const found = objs.filter((o) => o.kind === kind);
  check(found.length === 1, set, `expected exactly one ${kind}, found ${found.length}`);
  return found[0];
}

// The allot-server set: Deployment, headless Service, HPA, PDB, ServiceMonitor, PrometheusRule.
function checkServerSet(set, objs) {
  const dep = one(set, objs, "Deployment"), svc = one(set, objs, "Service"), hpa = one(set, objs, "HorizontalPodAutoscaler");
  const pdb = one(set, objs, "PodDisruptionBudget"), sm = one(set, objs, "ServiceMonitor"), pr = one(set, objs, "PrometheusRule");
  const cms = objs.filter((o) => o.kind === "ConfigMap");
  if (!dep || !svc) return;
  const W = (what) => `${set}: ${what}`;
  const pod = dep.spec.template;
  const podLabels = pod.metadata?.labels ?? {};
  check(subset(dep.spec.selector.matchLabels, podLabels), W("Deployment"), "selector does not match the pod labels");
  check(dep.spec.replicas === undefined, W("Deployment"), "must not set replicas (the HPA owns them)");
  const c = pod.spec.containers.find((x) => x.name === "allot-server");
  if (!check(c, W("Deployment"), "no container named allot-server")) return;

  // command line = the image's ENTRYPOINT; config and model paths are mounted
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  check(isDeepStrictEqual(argv, entrypoint), W("container"),
    `command+args ${JSON.stringify(argv)} differ from the Dockerfile ENTRYPOINT ${JSON.stringify(entrypoint)}`);
  const flag = (f) => { const k = (c.args ?? []).indexOf(f); return k >= 0 ? c.args[k + 1] : undefined; };
  const configPath = flag("--config"), modelDir = flag("--model-dir");
  check(configPath === "/etc/allot/allot.yaml" && modelDir === "/var/lib/allot/models", W("container"),
    "args must be --config /etc/allot/allot.yaml --model-dir /var/lib/allot/models");
  const mountOf = (path) => (c.volumeMounts ?? []).find((m) => m.mountPath === path);
  const volume = (name) => (pod.spec.volumes ?? []).find((v) => v.name === name);
  const cfgMount = mountOf(posix.dirname(configPath ?? ""));
  let cfg;
  if (check(cfgMount, W("container"), `nothing mounted at ${posix.dirname(configPath ?? "")}`)) {
    const v = volume(cfgMount.name);
    const cm = cms.find((x) => x.metadata.name === v?.configMap?.name);
    if (check(cm, W("volume config"), `ConfigMap '${v?.configMap?.name}' is not among the rendered objects`)) {
      const text = cm.data?.[posix.basename(configPath)];
      if (check(text, W(`ConfigMap ${cm.metadata.name}`), `has no key ${posix.basename(configPath)}`)) {
        writeFileSync(resolve(workDir, "configs", `${set}.yaml`), text);
        cfg = YAML.parse(text);
      }
    }
  }
  check(mountOf(modelDir), W("container"), `nothing mounted at --model-dir ${modelDir}`);
  check((c.volumeMounts ?? []).every((m) => m.readOnly || m.mountPath === "/tmp"), W("container"),
    "config and model mounts must be readOnly");

  // ports and probes
  const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
  check(ports.grpc === 50051 && ports.metrics === 9464, W("container"), "ports grpc=50051 and metrics=9464 required");
  for (const p of [50051, 9464]) check(exposed.includes(p), "Dockerfile", `EXPOSE lacks ${p}`);
  const grpcProbe = (p, name) => {
    if (!check(p?.grpc, W(`container ${name}`), "must be a native gRPC probe")) return;
    check(p.grpc.port === ports.grpc, W(`container ${name}`), `probes port ${p.grpc.port}, not the grpc port ${ports.grpc}`);
    probeServices.add(p.grpc.service ?? "");
    return p.grpc.service ?? "";
  };
  check(grpcProbe(c.livenessProbe, "livenessProbe") === "", W("livenessProbe"), 'must ask health service ""');
  check(grpcProbe(c.readinessProbe, "readinessProbe") === "readiness", W("readinessProbe"), 'must ask health service "readiness"');
  grpcProbe(c.startupProbe, "startupProbe");
  if (c.startupProbe) {
    const budget = (c.startupProbe.periodSeconds ?? 10) * (c.startupProbe.failureThreshold ?? 3);
    check(budget >= 60, W("startupProbe"), `gives start-up and warm-up only ${budget} s`);
  }

  // shutdown budget: preStop sleep + drain + in-flight timeout must fit the grace period
  const pre = c.lifecycle?.preStop?.exec?.command ?? [];
  const sleepS = pre.length === 2 && /(^|\/)sleep$/.test(pre[0]) ? Number(pre[1]) : NaN;
  check(Number.isFinite(sleepS) && sleepS > 0, W("preStop"), `must be exec [sleep N], got ${JSON.stringify(pre)}`);
  if (cfg) {
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    const need = sleepS + Number(cfg.server?.drain_delay_s ?? 0) + Number(cfg.server?.shutdown_timeout_s ?? 0);
    check(grace > need, W("terminationGracePeriodSeconds"),
      `${grace} s must exceed preStop ${sleepS} s + drain_delay_s + shutdown_timeout_s = ${need} s`);
  }

  // resources and security
  for (const k of ["requests", "limits"]) for (const r of ["cpu", "memory"]) {
    check(c.resources?.[k]?.[r] !== undefined, W("resources"), `${k}.${r} missing`);
  }
  const psc = pod.spec.securityContext ?? {}, csc = c.securityContext ?? {};
  check((csc.runAsNonRoot ?? psc.runAsNonRoot) === true, W("securityContext"), "runAsNonRoot must be true");
  check((csc.runAsUser ?? psc.runAsUser) === dockerUid, W("securityContext"), `runAsUser must be the image's uid ${dockerUid}`);
  check(csc.readOnlyRootFilesystem === true, W("securityContext"), "readOnlyRootFilesystem must be true");
  check(csc.allowPrivilegeEscalation === false, W("securityContext"), "allowPrivilegeEscalation must be false");
  check((csc.capabilities?.drop ?? []).includes("ALL"), W("securityContext"), "capabilities.drop must include ALL");

  // Service, HPA, PDB, ServiceMonitor, PrometheusRule
  check(svc.spec.clusterIP === "None", W("Service"), "must be headless (clusterIP: None)");
  check(subset(svc.spec.selector, podLabels), W("Service"), "selector does not match the pod labels");
  const svcPorts = Object.fromEntries(svc.spec.ports.map((p) => [p.name, p]));
  for (const [name, port] of [["grpc", 50051], ["metrics", 9464]]) {
    check(svcPorts[name]?.port === port, W("Service"), `port '${name}' must be ${port}`);
    const tp = svcPorts[name]?.targetPort;
    check(tp === undefined || tp === port || ports[tp] !== undefined, W("Service"), `targetPort ${tp} is not a container port`);
  }
  if (hpa) {
    check(hpa.spec.scaleTargetRef.kind === "Deployment" && hpa.spec.scaleTargetRef.name === dep.metadata.name,
      W("HorizontalPodAutoscaler"), "scaleTargetRef must name the Deployment");
    check(hpa.spec.metrics?.some((m) => m.resource?.name === "cpu"), W("HorizontalPodAutoscaler"), "must scale on CPU");
    check(hpa.spec.minReplicas >= 2, W("HorizontalPodAutoscaler"), "minReplicas < 2 leaves no replica during a disruption");
  }
  if (pdb) check(subset(pdb.spec.selector.matchLabels, podLabels), W("PodDisruptionBudget"), "selector does not match the pod labels");
  if (sm) {
    check(subset(sm.spec.selector.matchLabels, svc.metadata.labels), W("ServiceMonitor"), "selector does not match the Service labels");
    check(sm.spec.endpoints.some((e) => e.port === "metrics"), W("ServiceMonitor"), "must scrape the 'metrics' port");
  }
  if (pr) check(isDeepStrictEqual(pr.spec.groups, rules.groups), W("PrometheusRule"),
    "groups differ from deploy/prometheus/allot-rules.yaml; run: node deploy/checks/sync-prometheusrule.mjs");
  serverSets.push({
    set, namespace: dep.metadata.namespace, image: c.image, podLabels,
    modelClaim: volume(mountOf(modelDir)?.name)?.persistentVolumeClaim?.claimName,
    selectors: [["Service", svc.spec.selector], ["PodDisruptionBudget", pdb?.spec.selector.matchLabels]],
  });
}
// The allot-train set: an Indexed Job, one pod per rank, and the headless Service that names them.
function checkTrainingSet(set, objs) {
  const job = one(set, objs, "Job"), svc = one(set, objs, "Service");
  if (!job || !svc) return;
  const W = (what) => `${set}: ${what}`;
  const js = job.spec, pod = js.template, podLabels = pod.metadata?.labels ?? {};
  check(js.completionMode === "Indexed", W("Job"), "completionMode must be Indexed (JOB_COMPLETION_INDEX is the rank)");
  check(js.manualSelector !== true && js.selector === undefined, W("Job"), "leave spec.selector to Kubernetes");
  check(pod.spec.restartPolicy === "Never", W("Job"), "restartPolicy must be Never: a restarted rank cannot rejoin the run");
  check(js.backoffLimit === 0, W("Job"), "backoffLimit must be 0: a failed index would be retried alone, into a rendezvous that is over");
  const c = pod.spec.containers.find((x) => x.name === "allot-train");
  if (!check(pod.spec.containers.length === 1 && c, W("Job"), "needs exactly one container, named allot-train")) return;

  // ranks: completions = parallelism = WORLD_SIZE; the rank comes from the completion index
  const env = Object.fromEntries((c.env ?? []).map((e) => [e.name, e]));
  const worldSize = Number(env.WORLD_SIZE?.value);
  check(Number.isInteger(worldSize) && worldSize >= 1, W("container"), `WORLD_SIZE must be a literal rank count, got ${JSON.stringify(env.WORLD_SIZE)}`);
  check(js.completions === worldSize && js.parallelism === worldSize, W("Job"),
    `completions (${js.completions}) and parallelism (${js.parallelism}) must equal WORLD_SIZE (${env.WORLD_SIZE?.value})`);
  check(env.RANK === undefined || env.RANK.valueFrom?.fieldRef?.fieldPath === "metadata.annotations['batch.kubernetes.io/job-completion-index']",
    W("container"), "RANK must be unset (allot-train then reads JOB_COMPLETION_INDEX)");
  check(`${job.metadata.name}-${js.completions - 1}`.length <= 63, W("Job"), "name too long for the pods' hostnames (<name>-<index>, 63 characters)");

  // the headless Service names the pods, and rank 0 serves the rendezvous on one of its ports
  check(svc.spec.clusterIP === "None", W("Service"), "must be headless (clusterIP: None)");
  check(svc.spec.publishNotReadyAddresses === true, W("Service"),
    "publishNotReadyAddresses must be true: the ranks resolve one another before any is ready");
  check(Object.keys(svc.spec.selector ?? {}).length > 0 && subset(svc.spec.selector, podLabels), W("Service"),
    "selector does not match the Job's pod labels");
  check(pod.spec.subdomain === svc.metadata.name, W("Job"), `spec.template.spec.subdomain must be the Service name '${svc.metadata.name}'`);
  const masterAddr = env.MASTER_ADDR?.value, want = `${job.metadata.name}-0.${svc.metadata.name}`;
  check(masterAddr === want, W("container"), `MASTER_ADDR must be rank 0's pod name ${want}, got ${masterAddr}`);
  const masterPort = Number(env.MASTER_PORT?.value ?? 29500);
  const ports = Object.fromEntries((c.ports ?? []).map((p) => [p.name, p.containerPort]));
  const svcPort = svc.spec.ports.find((p) => p.port === masterPort);
  if (check(svcPort, W("Service"), `no port ${masterPort} (MASTER_PORT)`)) {
    const tp = svcPort.targetPort;
    check(tp === undefined ? true : (typeof tp === "number" ? tp === masterPort : ports[tp] === masterPort), W("Service"),
      `port ${masterPort} must target container port ${masterPort}, got ${tp}`);
  }

  // command line: allot-train, from the image; flags (not env) are the same for every rank
  const argv = [...(c.command ?? []), ...(c.args ?? [])];
  check(argv[0] === "/usr/local/bin/allot-train", W("container"), `must run /usr/local/bin/allot-train, got ${JSON.stringify(argv[0])}`);
  check(/^COPY --from=build .*\/build\/allot-train .*\/usr\/local\/bin\/$/m.test(runtime), "Dockerfile",
    "the runtime stage must COPY allot-train to /usr/local/bin/");
  const flag = (f) => { const k = argv.indexOf(f); return k >= 0 ? argv[k + 1] : undefined; };
  for (const f of ["--world-size", "--rank", "--master-addr", "--master-port"]) {
    check(!argv.includes(f), W("container"), `${f}: set WORLD_SIZE/MASTER_* in env; a --rank flag would give every pod one rank`);
  }
  check(/^[0-9]+$/.test(flag("--seed") ?? ""), W("container"), "needs a fixed --seed");
  check(argv.includes("--quiet"), W("container"), "needs --quiet");
  const configPath = flag("--config"), logs = flag("--logs"), out = flag("--out");
  check(configPath === "/etc/allot/allot.yaml", W("container"), "needs --config /etc/allot/allot.yaml");
  const mountOf = (path) => (c.volumeMounts ?? []).find((m) => m.mountPath === path);
  const volume = (name) => (pod.spec.volumes ?? []).find((v) => v.name === name);
  const cfgMount = mountOf(posix.dirname(configPath ?? ""));
  if (check(cfgMount, W("container"), `nothing mounted at ${posix.dirname(configPath ?? "")}`)) {
    check(cfgMount.readOnly === true, W("container"), "the config mount must be readOnly");
    const v = volume(cfgMount.name);
    const cm = objs.find((x) => x.kind === "ConfigMap" && x.metadata.name === v?.configMap?.name);
    if (check(cm, W("volume config"), `ConfigMap '${v?.configMap?.name}' is not among the rendered objects`)) {
      const text = cm.data?.[posix.basename(configPath)];
      if (check(text, W(`ConfigMap ${cm.metadata.name}`), `has no key ${posix.basename(configPath)}`)) {
        writeFileSync(resolve(workDir, "configs", `${set}.yaml`), text);
        check(text === configText, W(`ConfigMap ${cm.metadata.name}`), "allot.yaml differs from config/allot.yaml");
      }
    }
  }
  const logsMount = mountOf(logs), outMount = mountOf(out);
  if (check(logs && logsMount, W("container"), `--logs ${logs}: nothing mounted there`)) {
    check(logsMount.readOnly === true, W("container"), "the logs mount must be readOnly");
  }
  const outClaim = volume(outMount?.name)?.persistentVolumeClaim;
  if (check(out && outMount && outClaim, W("container"), `--out ${out}: needs a PersistentVolumeClaim mounted there`)) {
    check(!outMount.readOnly && !outClaim.readOnly, W("container"), "the --out volume must be writable");
  }

  // resources and security
  for (const k of ["requests", "limits"]) for (const r of ["cpu", "memory"]) {
    check(c.resources?.[k]?.[r] !== undefined, W("resources"), `${k}.${r} missing`);
  }
  const psc = pod.spec.securityContext ?? {}, csc = c.securityContext ?? {};
  check((csc.runAsNonRoot ?? psc.runAsNonRoot) === true, W("securityContext"), "runAsNonRoot must be true");
  check((csc.runAsUser ?? psc.runAsUser) === dockerUid, W("securityContext"), `runAsUser must be the image's uid ${dockerUid}`);
  check((csc.seccompProfile ?? psc.seccompProfile)?.type === "RuntimeDefault", W("securityContext"), "seccompProfile must be RuntimeDefault");
  check(csc.readOnlyRootFilesystem === true, W("securityContext"), "readOnlyRootFilesystem must be true");
  check(mountOf("/tmp") && volume(mountOf("/tmp").name)?.emptyDir, W("container"), "needs an emptyDir at /tmp (read-only root)");
  check(csc.allowPrivilegeEscalation === false, W("securityContext"), "allowPrivilegeEscalation must be false");
  check((csc.capabilities?.drop ?? []).includes("ALL"), W("securityContext"), "capabilities.drop must include ALL");
  check(pod.spec.automountServiceAccountToken === false, W("Job"), "automountServiceAccountToken must be false");
  trainingSets.push({ set, namespace: job.metadata.namespace, image: c.image, podLabels, svcSelector: svc.spec.selector, outClaim: outClaim?.claimName });
}

// ---------------------------------------------------------------- across sets: training next to its servers
for (const t of trainingSets) {
  const W = `${t.set}: Job`;
  const servers = serverSets.filter((s) => s.namespace === t.namespace);
  if (!check(servers.length > 0, W, `no rendered server set in namespace ${t.namespace}, whose model volume it should write`)) continue;
  for (const s of servers) {
    check(t.image === s.image, W, `image ${t.image} differs from ${s.set}'s allot-server image ${s.image}`);
    check(t.outClaim === s.modelClaim, W, `--out volume claim ${t.outClaim} is not ${s.set}'s model volume claim ${s.modelClaim}`);
    check(!subset(t.svcSelector, s.podLabels), `${t.set}: Service`, `selector also matches ${s.set}'s server pods`);
    for (const [kind, sel] of s.selectors) {
      check(!sel || !subset(sel, t.podLabels), `${s.set}: ${kind}`, `selector also matches ${t.set}'s training pods`);
    }
  }
}

// ---------------------------------------------------------------- Grafana dashboard
const dashPath = "deploy/grafana/allot-dashboard.json";
const dash = JSON.parse(read(dashPath));
const DS_UID = "${datasource}";
check(dash.uid === "allot-overview", dashPath, "uid must be allot-overview");
const vars = dash.templating?.list ?? [];
const dsVar = vars.find((v) => v.name === "datasource");
check(dsVar?.type === "datasource" && dsVar?.query === "prometheus", dashPath, "needs a 'datasource' variable of type datasource, query prometheus");
for (const v of vars.filter((x) => x.type === "query")) {
  check(v.datasource?.uid === DS_UID, `${dashPath} variable ${v.name}`, `datasource must be ${DS_UID}`);
  const q = typeof v.query === "string" ? v.query : v.query?.query ?? "";
  use(variableQueryMetrics(q), `dashboard variable ${v.name}`);
}
const ids = new Set();
const exprRules = [];
const queries = [];
const panelTs = [];
const occupied = new Set();
for (const p of dash.panels ?? []) {
  const where = `${dashPath} panel ${p.id} '${p.title}'`;
  check(!ids.has(p.id), where, "duplicate panel id");
  ids.add(p.id);
  const g = p.gridPos ?? {};
  check(g.x + g.w <= 24, where, "gridPos wider than 24 columns");
  for (let yy = g.y; yy < g.y + g.h; yy++) for (let xx = g.x; xx < g.x + g.w; xx++) {
    check(!occupied.has(`${xx},${yy}`), where, `overlaps another panel at (${xx},${yy})`);
    occupied.add(`${xx},${yy}`);
  }
  if (p.type === "row") continue;
  check(["timeseries", "stat"].includes(p.type), where, `panel type ${p.type} has no options check here; add one`);
  check(p.datasource?.uid === DS_UID, where, `datasource must be ${DS_UID}`);
  const refIds = new Set();
  for (const t of p.targets ?? []) {
    check(t.datasource?.uid === DS_UID, `${where} ${t.refId}`, `datasource must be ${DS_UID}`);
    check(!refIds.has(t.refId), where, `duplicate refId ${t.refId}`);
    refIds.add(t.refId);
    for (const r of rangeSelectors(t.expr)) {
      check(r === "[$__rate_interval]", `${where} ${t.refId}`, `range ${r}: use [$__rate_interval]`);
    }
    use(metricNames(t.expr), `dashboard '${p.title}'`);
    const record = `allot_dashboard:panel${p.id}_${t.refId}`;
    exprRules.push({ record, expr: substituteGrafanaVariables(t.expr) });
    queries.push({ panel: p.title, refId: t.refId, expr: t.expr });
  }
  check(refIds.size > 0, where, "has no queries");
  const opt = p.type === "timeseries" ? "TimeSeriesOptions" : "StatOptions";
  panelTs.push(`export const panel${p.id}_options = ${JSON.stringify(p.options ?? {})} satisfies DeepPartial<Plain<${opt}>>;`);
  if (p.type === "timeseries") {
    panelTs.push(`export const panel${p.id}_custom = ${JSON.stringify(p.fieldConfig?.defaults?.custom ?? {})} satisfies DeepPartial<Plain<TimeSeriesFieldConfig>>;`);
  }
  (p.targets ?? []).forEach((t, k) => panelTs.push(`export const panel${p.id}_target${k} = ${JSON.stringify(t)} satisfies PrometheusQuery;`));
}

// ---------------------------------------------------------------- Grafana provisioning
{
  const prov = YAML.parse(read("deploy/grafana/provisioning/dashboards.yaml"));
  check(prov?.apiVersion === 1 && prov.providers?.some((p) => p.type === "file" && p.options?.path),
    "deploy/grafana/provisioning/dashboards.yaml", "needs apiVersion 1 and a file provider with options.path");
  const ds = YAML.parse(read("deploy/grafana/provisioning/datasources.yaml"));
  const prom = ds?.datasources?.find((d) => d.type === "prometheus");
  if (check(ds?.apiVersion === 1 && prom?.url, "deploy/grafana/provisioning/datasources.yaml",
    "needs apiVersion 1 and a prometheus data source with a url")) {
    const sm = YAML.parse(read("deploy/k8s/base/servicemonitor.yaml"));
    const interval = sm.spec.endpoints.find((e) => e.port === "metrics")?.interval;
    check(prom.jsonData?.timeInterval === interval, "deploy/grafana/provisioning/datasources.yaml",
      `jsonData.timeInterval must equal the ServiceMonitor scrape interval (${interval}) for $__rate_interval`);
  }
}

writeFileSync(resolve(workDir, "dashboard-exprs.rules.yaml"), YAML.stringify({ groups: [{ name: "allot-dashboard", rules: exprRules }] }));
writeFileSync(resolve(workDir, "dashboard-queries.json"), JSON.stringify(queries, null, 2));
writeFileSync(resolve(workDir, "metrics-used.json"),
  JSON.stringify(Object.fromEntries([...used].filter(([k]) => !recorded.has(k)).map(([k, v]) => [k, [...v].sort()])), null, 2));
writeFileSync(resolve(workDir, "probe-services.txt"), [...probeServices].join("\n") + "\n");

// ---------------------------------------------------------------- TypeScript for tsc
const k8sTs = [
  "// Generated by check-static.mjs: every rendered object must satisfy its API type.",
  ...[...tsImports].map(([mod, alias]) => `import type * as ${alias} from ${JSON.stringify(mod)};`),
  `import type { IDeployment } from "kubernetes-models/apps/v1/Deployment";`,
  `import type { IServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";`,
  `import type { IJob } from "kubernetes-models/batch/v1/Job";`,
  ...tsLines,
  "// Canaries: misspelled fields must be rejected, or the checks above prove nothing.",
  `export const canaryDeployment = { apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "c" },`,
  `  spec: { selector: {}, template: { spec: { containers: [{ name: "c", readinessProbe: { grpc: { port: 1,`,
  `    // @ts-expect-error unknown field`,
  `    servce: "readiness" } } }] } } } } satisfies IDeployment;`,
  `export const canaryServiceMonitor = { apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor", metadata: { name: "c" },`,
  `  spec: { selector: {}, endpoints: [{ port: "metrics",`,
  `    // @ts-expect-error unknown field`,
  `    intervall: "15s" }] } } satisfies IServiceMonitor;`,
  `export const canaryJob = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "c" },`,
  `  spec: { completionMode: "Indexed", template: { spec: { containers: [{ name: "c" }],`,
  `    // @ts-expect-error unknown field`,
  `    subdomian: "c" } } } } satisfies IJob;`,
  "",
];
writeFileSync(resolve(tsDir, "k8s.ts"), k8sTs.join("\n"));

const dashTs = [
  "// Generated by check-static.mjs: the dashboard must satisfy @grafana/schema's Dashboard type.",
  `import type { Dashboard, DataQuery } from "@grafana/schema";`,
  `import type { Options as TimeSeriesOptions, FieldConfig as TimeSeriesFieldConfig } from "@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen";`,
  `import type { Options as StatOptions } from "@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen";`,
  "// JSON holds enum members as their string values: accept those for the schema's string enums.",
  "type Plain<T> = T extends string ? `${T}` : T extends number | boolean | null | undefined ? T",
  "  : T extends Array<infer U> ? Array<Plain<U>> : T extends object ? { [K in keyof T]: Plain<T[K]> } : T;",
  "type DeepPartial<T> = T extends Array<infer U> ? Array<DeepPartial<U>> : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;",
  "// Grafana's Prometheus query model (public/app/plugins/datasource/prometheus dataquery); @grafana/schema",
  "// no longer ships it, so it is spelled out here.",
  "interface PrometheusQuery extends DataQuery {",
  "  expr: string; legendFormat?: string; range?: boolean; instant?: boolean; exemplar?: boolean;",
  "  format?: 'time_series' | 'table' | 'heatmap'; editorMode?: 'code' | 'builder'; interval?: string; intervalFactor?: number;",
  "}",
  `export const dashboard = ${JSON.stringify(dash, null, 2)} satisfies Plain<Dashboard>;`,
  ...panelTs,
  "// Canaries: misspelled fields must be rejected.",
  `export const canaryDashboard = { schemaVersion: 39, panels: [{ type: "timeseries",`,
  `  // @ts-expect-error unknown field`,
  `  gridPoss: { h: 1, w: 1, x: 0, y: 0 } }] } satisfies Plain<Dashboard>;`,
  `export const canaryOptions = { legend: { calcs: [], placement: "bottom", showLegend: true,`,
  `  // @ts-expect-error unknown field`,
  `  dispayMode: "table" } } satisfies DeepPartial<Plain<TimeSeriesOptions>>;`,
  "",
];
writeFileSync(resolve(tsDir, "dashboard.ts"), dashTs.join("\n"));

if (failures.length) {
  console.error(`check-static: ${failures.length} problem(s):`);
  for (const f of failures) console.error(`  FAIL ${f}`);
  process.exit(1);
}
console.log(`check-static: ${renderedFiles.length} rendered sets, ${tsLines.length / 2} objects schema-valid; ` +
  `dashboard ${dash.panels.length} panels, ${queries.length} queries; ${used.size} metric names used`);
