#!/usr/bin/python3
"""Drives a running allot-server over gRPC so that every metric family gets series.

Run with Debian's /usr/bin/python3 (python3-grpcio); the Allocator and health stubs must be on
PYTHONPATH (run_all.sh generates them with grpc_tools.protoc).

  drive_server.py --addr 127.0.0.1:PORT [--health '' --health readiness] [--seconds S] [--qps Q]

1. Waits for the channel and checks that each --health service reports SERVING.
2. Reads GetControlState for the agents' feature widths and the modules.
3. Reports load for every module (recall: cpu 0.4, qps 100), calls Allocate once per agent, once
   with a recall StageCache (so the cache-reuse metrics appear), and once with a wrong feature
   count (must be INVALID_ARGUMENT).
4. Keeps calling Allocate at about --qps (and ReportLoad twice a second) for --seconds.
Exits non-zero on any unexpected answer.
"""
import argparse
import sys
import time

import grpc

from allot.v1 import allocator_pb2 as pb
from allot.v1 import allocator_pb2_grpc as pb_grpc
# grpc.health.v1, generated under another module name: the `grpc` package owns `grpc.*`.
from healthcheck import health_pb2, health_pb2_grpc


def fail(msg):
    print(f"drive_server: FAIL: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def features_for(width, i):
    # Plausible, finite values; vary a little so different value buckets are hit.
    base = [1.0 + (i % 5) * 0.5, 0.5, 0.05 + (i % 3) * 0.02, 0.0, 0.3, 0.9, 1.0, 3.0]
    return [base[k % len(base)] for k in range(width)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--health", action="append", default=[],
                    help="grpc.health.v1 service that must be SERVING (repeatable; '' = server)")
    ap.add_argument("--seconds", type=float, default=0.0)
    ap.add_argument("--qps", type=float, default=100.0)
    args = ap.parse_args()

    channel = grpc.insecure_channel(args.addr)
    try:
        grpc.channel_ready_future(channel).result(timeout=10)
    except grpc.FutureTimeoutError:
        fail(f"could not connect to {args.addr} within 10 s")

    health = health_pb2_grpc.HealthStub(channel)
    for service in args.health:
        resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
        if resp.status != health_pb2.HealthCheckResponse.SERVING:
            fail(f"health service {service!r} is {health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)}")
        print(f"drive_server: health {service!r} SERVING", flush=True)

    stub = pb_grpc.AllocatorStub(channel)
    state = stub.GetControlState(pb.GetControlStateRequest(), timeout=2)
    widths = {a.name: len(a.features) for a in state.agents}
    modules = [m.name for m in state.modules]
    if "recall" not in widths:
        fail(f"no agent 'recall' in GetControlState (agents: {sorted(widths)})")
    print(f"drive_server: agents {widths}, modules {modules}", flush=True)

    def report_load():
        for m in modules:
            cpu, qps = (0.4, 100.0) if m == "recall" else (0.35, 80.0)
            stub.ReportLoad(pb.LoadReport(module=m, cpu_utilization=cpu, qps=qps, reporter="deploy-checks"),
                            timeout=2)

    report_load()
    n = 0
    for agent, width in sorted(widths.items()):
        stub.Allocate(pb.AllocateRequest(request_id=f"warm-{agent}", agent=agent,
                                         features=features_for(width, n)), timeout=2)
        n += 1
    cache = [pb.StageCache(stage=pb.STAGE_RECALL, present=True, age_seconds=5, size=10)]
    resp = stub.Allocate(pb.AllocateRequest(request_id="cache-1", agent="recall", user_id="u1",
                                            features=features_for(widths["recall"], 1), cache=cache),
                         timeout=2)
    print(f"drive_server: cache request -> cache_reuse={pb.CacheReuse.Name(resp.cache_reuse)} "
          f"price={resp.compute_price:.3f} bundle={resp.bundle_version} fallback={resp.fallback}", flush=True)
    try:
        stub.Allocate(pb.AllocateRequest(request_id="bad-1", agent="recall", features=[1.0]), timeout=2)
        fail("Allocate with 1 feature for 'recall' succeeded; expected INVALID_ARGUMENT")
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            fail(f"Allocate with a wrong feature count gave {e.code().name}; expected INVALID_ARGUMENT")

    agents = sorted(widths)
    deadline = time.monotonic() + args.seconds
    next_report = time.monotonic()
    period = 1.0 / args.qps if args.qps > 0 else 0.01
    calls = 0
    while time.monotonic() < deadline:
        agent = agents[calls % len(agents)]
        req = pb.AllocateRequest(request_id=f"loop-{calls}", agent=agent,
                                 features=features_for(widths[agent], calls))
        if agent == "recall" and calls % 4 == 0:
            req.cache.extend(cache)
        stub.Allocate(req, timeout=2)
        calls += 1
        now = time.monotonic()
        if now >= next_report:
            report_load()
            next_report = now + 0.5
        time.sleep(period)
    print(f"drive_server: done ({n + 2} setup calls, {calls} loop calls)", flush=True)


if __name__ == "__main__":
    main()
