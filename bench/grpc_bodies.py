"""Writes gRPC-framed request bodies for h2load (bench/h2load_compare.sh).

allocate.bin: one Allocate request for --agent, its features read from the live server's schema
(GetControlState), every feature at 0.3; health.bin: an empty grpc.health.v1 HealthCheckRequest.
A gRPC message on the wire is a 1-byte compression flag, a 4-byte big-endian length, the bytes.
"""
import argparse
import os
import struct
import sys

import grpc


def frame(payload):
    return struct.pack(">BI", 0, len(payload)) + payload


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from grpc_tools import protoc
    # The generated modules go under --out, which the calling script removes with the bodies
    # (a directory of their own in /tmp was left behind by every run).
    gen = os.path.join(args.out, "python")
    os.makedirs(gen, exist_ok=True)
    if protoc.main(["protoc", "-I" + args.proto_dir, "--python_out=" + gen,
                    "allot/v1/allocator.proto", "allot/v1/transition.proto"]) != 0:
        sys.exit("grpc_bodies: protoc failed")
    sys.path.insert(0, gen)
    from allot.v1 import allocator_pb2

    channel = grpc.insecure_channel(args.target)
    get_state = channel.unary_unary(
        "/allot.v1.Allocator/GetControlState",
        request_serializer=allocator_pb2.GetControlStateRequest.SerializeToString,
        response_deserializer=allocator_pb2.ControlState.FromString)
    state = get_state(allocator_pb2.GetControlStateRequest(), timeout=10)
    schema = next((a for a in state.agents if a.name == args.agent), None)
    if schema is None:
        sys.exit("grpc_bodies: the server has no agent '%s' (has %s)"
                 % (args.agent, ", ".join(a.name for a in state.agents)))
    request = allocator_pb2.AllocateRequest(request_id="h2load", agent=args.agent,
                                            features=[0.3] * len(schema.features))
    allocate = channel.unary_unary(
        "/allot.v1.Allocator/Allocate",
        request_serializer=allocator_pb2.AllocateRequest.SerializeToString,
        response_deserializer=allocator_pb2.AllocateResponse.FromString)
    answer = allocate(request, timeout=10)  # the body is served before it is timed
    with open(os.path.join(args.out, "allocate.bin"), "wb") as f:
        f.write(frame(request.SerializeToString()))
    with open(os.path.join(args.out, "health.bin"), "wb") as f:
        f.write(frame(b""))
    print("grpc_bodies: agent %s, %d features, bundle %s" %
          (args.agent, len(schema.features), answer.bundle_version))


if __name__ == "__main__":
    main()
