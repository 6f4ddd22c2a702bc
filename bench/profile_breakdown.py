#!/usr/bin/env python3
"""Sorts a perf report's self time (perf report --no-children --sort dso,sym) into the stages of
an Allocate call, so the README's breakdown can be reproduced. The first matching rule wins; the
rules go from the most specific (Allot's own functions) to the most general (a library)."""
import re
import sys

# (stage, regex over "dso symbol"), in priority order.
RULES = [
    ("scoring (fast path kernels, learned and analytic scorers)",
     r"kernels::|FastScorer|AnalyticScorer|ServedScores|models::|at::|c10::|torch::"),
    ("decision rule, cost order, cache-reuse choice",
     r"DecidePriced|CostOrder|ChooseCacheReuse|decision_rule|Decide\b|AllocationEngine::|ActionSpace"
     r"|\(anonymous namespace\)::Choose\b|LambdaTable"),
    ("reservoir sampling", r"ScoreReservoir"),
    ("validation", r"Validate|FeatureGuard"),
    ("metrics (prometheus-cpp, Allot's metric calls)", r"prometheus::|ServerMetrics|libprometheus"),
    ("response building", r"FillAllocateResponse|proto_convert|ToProto"),
    ("handler glue (service, snapshot, arms, shadow)", r"AllocatorService|ArmOf|InShadowSample|allot::"),
    ("protobuf parse and serialize",
     r"libprotobuf|google::protobuf|_InternalParse|_InternalSerialize|ByteSizeLong|allot::v1::"),
    ("malloc and free", r"malloc|free|operator new|operator delete|libc\.so.*(_int_|tcache|arena)"),
    ("gRPC and Abseil (transport, HTTP/2, callback dispatch)",
     r"libgrpc|libgpr|libabsl|libaddress_sorting|libupb|grpc_|grpc::"),
    ("kernel (syscalls, TCP over loopback, scheduling)", r"\[kernel|\[k\]"),
    ("libc and libstdc++ (other)", r"libc\.so|libstdc\+\+|libm\.so|ld-linux"),
]


def main(path):
    totals = {}
    top = []
    line_re = re.compile(r"^\s+([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*)$")
    with open(path) as report:
        for line in report:
            m = line_re.match(line)
            if not m:
                continue
            share, dso, kind, symbol = float(m.group(1)), m.group(2), m.group(3), m.group(4)
            text = f"{dso} {'[k]' if kind == 'k' else ''} {symbol}"
            stage = next((name for name, rule in RULES if re.search(rule, text)), "other")
            totals[stage] = totals.get(stage, 0.0) + share
            top.append((share, dso, symbol.strip()))
    if not totals:
        sys.exit("profile_breakdown: no samples in " + path)
    print("share of the server's CPU by stage (self time):")
    for stage, share in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {share:5.1f}%  {stage}")
    print("top symbols:")
    for share, dso, symbol in sorted(top, reverse=True)[:15]:
        print(f"  {share:5.1f}%  {dso:<28.28} {symbol[:90]}")


if __name__ == "__main__":
    main(sys.argv[1])
