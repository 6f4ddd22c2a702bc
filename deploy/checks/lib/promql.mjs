// Small PromQL helpers for the checks. promtool and a real Prometheus do the parsing and the
// evaluation; this only finds the metric names an expression reads, to compare them with what
// the server exports.

const KEYWORDS = new Set([
  "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
  "offset", "atan2", "Inf", "NaN", "inf", "nan",
]);

// Grafana's built-in variables, replaced by fixed values so an expression is plain PromQL.
export function substituteGrafanaVariables(expr, { rateInterval = "1m" } = {}) {
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("${__rate_interval}", rateInterval)
    .replaceAll("$__interval", rateInterval)
    .replaceAll("$__range", "1h")
    // Dashboard variables appear only inside =~ matchers here; ".*" keeps them valid regexes.
    .replace(/\$\{(\w+)(:\w+)?\}|\$(\w+)/g, ".*");
}

// Metric names read by a PromQL expression (not functions, label names or keywords).
export function metricNames(expr) {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // string literals
    .replace(/#[^\n]*/g, "") // comments
    .replace(/\{[^}]*\}/g, "{}") // label matchers
    .replace(/\[[^\]]*\]/g, "[]") // range and subquery selectors
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " "); // label lists
  const names = new Set();
  const re = /(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])/g;
  let m;
  while ((m = re.exec(s)) !== null) {
    const tok = m[1];
    if (KEYWORDS.has(tok)) continue;
    const rest = s.slice(re.lastIndex);
    if (/^\s*\(/.test(rest)) continue; // function or aggregation call
    names.add(tok);
  }
  return [...names];
}

// Grafana's label_values(metric{...}, label) / label_values(label) variable queries.
export function variableQueryMetrics(query) {
  const m = /^\s*label_values\s*\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?\s*,/.exec(query);
  return m ? [m[1]] : [];
}

// Every range selector of a dashboard expression, e.g. "[$__rate_interval]".
export function rangeSelectors(expr) {
  return [...expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').matchAll(/\[[^\]]*\]/g)].map((m) => m[0]);
}
