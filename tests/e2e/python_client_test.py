"""An independent client (python3-grpcio) against the real allot-server binary.

Checks what a non-C++ serving stage relies on: health, reflection, schema, Allocate and errors.
Stubs are generated at test time from the repository's .proto files and the system's grpc-proto.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import unittest

import grpc

ARGS = None


def generate_stubs(proto_dir, out_dir):
    from grpc_tools import protoc
    system = "/usr/share/grpc-proto"
    # grpc_tools ships the well-known types; the system package has health and reflection.
    for include, files in [
        (proto_dir, ["allot/v1/allocator.proto", "allot/v1/transition.proto"]),
        (system, ["grpc/health/v1/health.proto", "grpc/reflection/v1alpha/reflection.proto"]),
    ]:
        rc = protoc.main(["protoc", "-I" + include, "--python_out=" + out_dir, "--grpc_python_out=" + out_dir] + files)
        if rc != 0:
            raise RuntimeError("protoc failed for %s" % files)
    for pkg in ["allot", "allot/v1", "grpc", "grpc/health", "grpc/health/v1", "grpc/reflection",
                "grpc/reflection/v1alpha"]:
        open(os.path.join(out_dir, pkg, "__init__.py"), "a").close()


class AllotServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        generate_stubs(ARGS.proto_dir, cls.tmp.name)
        # The generated package "grpc" would shadow grpcio: import it under another root.
        gen_root = os.path.join(cls.tmp.name, "gen")
        os.makedirs(gen_root)
        os.rename(os.path.join(cls.tmp.name, "grpc"), os.path.join(gen_root, "grpc_std"))
        for root, _, files in os.walk(os.path.join(gen_root, "grpc_std")):
            for name in files:
                path = os.path.join(root, name)
                text = open(path).read().replace("from grpc.health", "from grpc_std.health").replace(
                    "from grpc.reflection", "from grpc_std.reflection")
                open(path, "w").write(text)
        sys.path.insert(0, cls.tmp.name)
        sys.path.insert(0, gen_root)
        global allocator_pb2, allocator_pb2_grpc, health_pb2, health_pb2_grpc, reflection_pb2, reflection_pb2_grpc
        from allot.v1 import allocator_pb2, allocator_pb2_grpc
        from grpc_std.health.v1 import health_pb2, health_pb2_grpc
        from grpc_std.reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        cls.proc = subprocess.Popen([ARGS.server, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"],
                                    stderr=subprocess.PIPE, text=True)
        port = None
        for line in cls.proc.stderr:
            m = re.search(r"listening on port (\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            raise RuntimeError("server did not start")
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        grpc.channel_ready_future(cls.channel).result(timeout=10)
        cls.stub = allocator_pb2_grpc.AllocatorStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.proc.terminate()
        cls.proc.wait(timeout=20)
        cls.tmp.cleanup()

    def test_health_and_readiness(self):
        health = health_pb2_grpc.HealthStub(self.channel)
        for service in ["", "readiness"]:
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            self.assertEqual(reply.status, health_pb2.HealthCheckResponse.SERVING, service)

    def test_reflection_lists_and_describes_the_service(self):
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        requests = [reflection_pb2.ServerReflectionRequest(list_services=""),
                    reflection_pb2.ServerReflectionRequest(file_containing_symbol="allot.v1.Allocator")]
        replies = list(stub.ServerReflectionInfo(iter(requests), timeout=5))
        services = {s.name for s in replies[0].list_services_response.service}
        self.assertIn("allot.v1.Allocator", services)
        self.assertIn("grpc.health.v1.Health", services)
        from google.protobuf import descriptor_pb2
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in replies[1].file_descriptor_response.file_descriptor_proto]
        methods = {m.name for f in files for s in f.service for m in s.method}
        self.assertEqual(methods, {"Allocate", "ReportLoad", "GetControlState"})

    def test_allocate_by_schema(self):
        state = self.stub.GetControlState(allocator_pb2.GetControlStateRequest(), timeout=5)
        agents = {a.name: a for a in state.agents}
        self.assertEqual(set(agents), {"recall", "prerank", "rank"})
        rank = agents["rank"]
        reply = self.stub.Allocate(allocator_pb2.AllocateRequest(
            request_id="py-1", agent="rank", features=[0.5] * len(rank.features)), timeout=5)
        self.assertEqual(reply.request_id, "py-1")
        self.assertFalse(reply.fallback)
        self.assertEqual([d.name for d in reply.decisions], [d.name for d in rank.decisions])
        queue = reply.decisions[0]
        self.assertIn(str(queue.queue_length), list(rank.decisions[0].options))
        self.assertGreater(reply.predicted_cost, 0)
        # The price of compute is a plain attribute (it was `lambda`, a Python keyword).
        self.assertGreater(reply.compute_price, 0)
        self.assertNotIn("lambda", allocator_pb2.AllocateResponse.DESCRIPTOR.fields_by_name)
        self.assertEqual(allocator_pb2.AllocateResponse.DESCRIPTOR.fields_by_name["compute_price"].number, 5)
        modules = self.stub.GetControlState(allocator_pb2.GetControlStateRequest(), timeout=5).modules
        self.assertTrue(all(m.compute_price > 0 for m in modules))

    def test_explain_prices_every_option(self):
        reply = self.stub.Allocate(allocator_pb2.AllocateRequest(
            agent="prerank", features=[0.5] * 8, explain=True), timeout=5)
        options = reply.explanation.options
        self.assertGreater(len(options), 1)
        self.assertEqual(sum(o.chosen for o in options), 1)
        for o in options:
            priced = o.value - sum(c.cost_ms * c.compute_price for c in o.costs)
            self.assertAlmostEqual(o.priced_score, priced, places=9)

    def test_bad_input_names_the_field(self):
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.Allocate(allocator_pb2.AllocateRequest(agent="rank", features=[1.0, float("nan")]), timeout=5)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(err.exception.details().startswith("features: "), err.exception.details())
        with self.assertRaises(grpc.RpcError) as err:
            self.stub.ReportLoad(allocator_pb2.LoadReport(module="nowhere", cpu_utilization=0.3), timeout=5)
        self.assertEqual(err.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertTrue(err.exception.details().startswith("module: "), err.exception.details())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--proto-dir", required=True)
    ARGS, rest = parser.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
