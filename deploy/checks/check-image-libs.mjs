#!/usr/bin/env node
// Without a Docker engine the runtime image cannot be built here, so this checks its package list
// offline: every shared library the locally built binaries load (ldd) must belong to a Debian
// package that the Dockerfile installs for the runtime, directly or through dependencies (dpkg's
// database on this Debian 12 machine), or to debian:12-slim's required base. The packages are
// installed by the stage that installs libtorch1.13: the runtime (last) stage itself, or a stage
// whose ldd closure the runtime stage copies (runtime-libs, see the Dockerfile).
//
//   node check-image-libs.mjs BUILD_DIR
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const buildDir = process.argv[2];
const die = (m) => { console.error(`check-image-libs: FAIL: ${m}`); process.exit(1); };
if (!buildDir) die("usage: check-image-libs.mjs BUILD_DIR");

// apt-get install arguments of the stage that installs libtorch1.13
const stages = readFileSync(resolve(root, "Dockerfile"), "utf8").replace(/\\\n/g, " ").split(/^FROM\s+/m).slice(1);
const installs = stages.map((s) => /apt-get install ([^&;]+)/.exec(s)?.[1].trim().split(/\s+/).filter((w) => !w.startsWith("-")) ?? []);
const k = installs.findIndex((w) => w.includes("libtorch1.13"));
if (k < 0) die("no stage apt-get installs libtorch1.13");
const wanted = installs[k];
const stageName = /^\S+\s+AS\s+(\S+)/i.exec(stages[k])?.[1] ?? String(k);
if (k !== stages.length - 1 && !new RegExp(`^COPY --from=${stageName} `, "m").test(stages.at(-1))) {
  die(`the runtime (last) stage must COPY --from=${stageName}, the stage that installs the runtime packages`);
}
for (const p of ["libtorch1.13", "libopenblas0-pthread", "ca-certificates"]) {
  if (!wanted.includes(p)) die(`stage ${stageName} must install ${p}`);
}

// installed packages: dependencies, provides, and the required base
const db = new Map();
const provides = new Map();
const out = execFileSync("dpkg-query", ["-W", "-f",
  "${Package}\t${Depends}, ${Pre-Depends}\t${Provides}\t${Essential}\t${Priority}\n"], { encoding: "utf8" });
for (const line of out.trim().split("\n")) {
  const [pkg, deps, prov, essential, priority] = line.split("\t");
  const alts = deps.split(",").map((d) => d.trim()).filter(Boolean)
    .map((d) => d.split("|").map((a) => a.trim().split(/[\s:(]/)[0]));
  db.set(pkg, { alts, base: essential === "yes" || priority === "required" });
  for (const p of prov.split(",").map((x) => x.trim().split(/[\s(]/)[0]).filter(Boolean)) {
    if (!provides.has(p)) provides.set(p, []);
    provides.get(p).push(pkg);
  }
}
for (const p of wanted) if (!db.has(p)) die(`${p} (stage ${stageName}) is not installed here, so its dependencies cannot be followed`);
const closure = new Set();
const queue = [...wanted, ...[...db].filter(([, v]) => v.base).map(([k]) => k)];
while (queue.length) {
  const p = queue.pop();
  if (closure.has(p)) continue;
  closure.add(p);
  for (const alt of db.get(p)?.alts ?? []) {
    for (const a of alt) for (const real of [a, ...(provides.get(a) ?? [])]) if (db.has(real)) queue.push(real);
  }
}

// the libraries the binaries load, and their packages
const bins = ["allot-server", "allot-bench", "allot-train"].map((b) => resolve(buildDir, b)).filter(existsSync);
if (!bins.length) die(`no allot-server in ${buildDir}`);
const missing = [];
const libs = new Set();
for (const bin of bins) {
  for (const line of execFileSync("ldd", [bin], { encoding: "utf8" }).split("\n")) {
    const lm = /=>\s+(\/\S+)/.exec(line) ?? /^\s+(\/\S+)\s+\(/.exec(line);
    // Resolve symlinks: libblas.so.3 is a Debian alternative whose target a package owns.
    if (lm) libs.add(realpathSync(lm[1]));
    else if (/not found/.test(line)) missing.push(`${bin}: ${line.trim()}`);
  }
}
// One dpkg -S for all paths, with both spellings of merged-/usr paths (/lib and /usr/lib).
const spellings = (p) => [p, p.startsWith("/usr/") ? p.slice(4) : `/usr${p}`];
const owners = new Map();
const res = spawnSync("dpkg", ["-S", ...[...libs].flatMap(spellings)], { encoding: "utf8" });
for (const line of res.stdout.split("\n")) {
  const om = /^([^:]+)(?::[^:]+)?: (\/\S+)$/.exec(line);
  if (om) owners.set(om[2], om[1].split(",")[0].trim());
}
for (const lib of libs) {
  const pkg = spellings(lib).map((p) => owners.get(p)).find(Boolean);
  if (!pkg) missing.push(`${lib}: no Debian package owns it`);
  else if (!closure.has(pkg)) missing.push(`${lib} (package ${pkg}) is not installed by stage ${stageName}`);
}
if (missing.length) die(`runtime image would lack libraries:\n  ${[...new Set(missing)].join("\n  ")}`);
console.log(`check-image-libs: ${libs.size} libraries of ${bins.map((b) => b.split("/").pop()).join(", ")} ` +
  `are covered by the ${wanted.length} packages of stage ${stageName} (${closure.size} with dependencies and base)`);
