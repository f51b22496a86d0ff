#!/usr/bin/env python3
"""Talk to a running agentnetwork node through its gRPC control API.

Prints the node's peer ID, uptime and connected peers; with --watch it then prints peer events
(connected, identified, disconnected) as they happen, until Ctrl+C.

    python3 node_client.py -data ./data              # endpoint (and token) found in the data dir
    python3 node_client.py -data ./data --watch
    python3 node_client.py --endpoint 127.0.0.1:50051 --token-file ./data/api.token

Requirements (Debian 12 packages): python3-grpcio and python3-protobuf to run it, and
protobuf-compiler and protobuf-compiler-grpc once, to generate the Python modules from the
repository's proto/ directory:

    sudo apt-get install python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc
    mkdir -p gen
    protoc -I proto --python_out=gen --grpc_python_out=gen \\
        --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \\
        proto/agentnetwork/v1/node.proto
    PYTHONPATH=gen python3 examples/python/node_client.py -data ./data

(A CMake build of agentnetwork generates the same modules in <build>/proto/python.)

How a client finds the node: the node writes its endpoint, a ready-made gRPC target, into the
"grpc" key of DIR/node.status: "unix:/abs/DIR/api.sock" by default, "127.0.0.1:PORT" otherwise.
When the node listens on a non-loopback address (-grpc 0.0.0.0:PORT), every call must carry
"authorization: Bearer <token>", the token being the content of DIR/api.token. See docs/api.md.
"""

import argparse
import json
import os
import sys

try:
    import grpc
    from agentnetwork.v1 import node_pb2, node_pb2_grpc
except ImportError as e:
    sys.exit("node_client.py: %s\nInstall python3-grpcio and python3-protobuf, generate the "
             "modules from proto/ (see the top of this file) and put them on PYTHONPATH." % e)

# How long one call may take. Every call should have a deadline.
CALL_TIMEOUT_SECONDS = 10


def endpoint_and_token(args):
    """The gRPC target and the bearer token (or None) from the command line."""
    endpoint, token_file = args.endpoint, args.token_file
    if not endpoint:
        status_file = os.path.join(args.data, "node.status")
        try:
            with open(status_file) as f:
                endpoint = json.load(f).get("grpc")
        except (OSError, ValueError) as e:
            sys.exit("cannot read %s (is the node running?): %s" % (status_file, e))
        if not endpoint:
            sys.exit("%s names no \"grpc\" endpoint" % status_file)
        # The token only matters when the node listens on a non-loopback address; sending it
        # to a local endpoint does no harm.
        if not token_file and os.path.exists(os.path.join(args.data, "api.token")):
            token_file = os.path.join(args.data, "api.token")
    token = args.token
    if token is None and token_file:
        with open(token_file) as f:
            token = f.read().strip()
    return endpoint, token


def format_duration(ms):
    seconds = ms // 1000
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if hours:
        return "%dh%dm%ds" % (hours, minutes, seconds)
    if minutes:
        return "%dm%ds" % (minutes, seconds)
    return "%ds" % seconds


def direction(peer):
    return {node_pb2.DIRECTION_INBOUND: "inbound",
            node_pb2.DIRECTION_OUTBOUND: "outbound"}.get(peer.direction, "-")


def show_status(stub, metadata):
    status = stub.GetStatus(node_pb2.GetStatusRequest(), metadata=metadata,
                            timeout=CALL_TIMEOUT_SECONDS)
    print("peer ID:   %s" % status.peer_id)
    print("version:   %s (%s), role %s, PID %d" % (status.version, status.agent_version,
                                                   status.role, status.pid))
    print("uptime:    %s" % format_duration(status.uptime_ms))
    for address in status.listen_addrs:
        print("listen:    %s" % address)

    peers = stub.ListPeers(node_pb2.ListPeersRequest(), metadata=metadata,
                           timeout=CALL_TIMEOUT_SECONDS).peers
    print("peers:     %d" % len(peers))
    for peer in peers:
        print("  %s  %-8s  %s  %s" % (peer.peer_id, direction(peer), peer.address,
                                      peer.agent_version or "(not identified yet)"))


def watch(stub, metadata):
    # A stream has no deadline: it lasts until we cancel it or the node stops. include_current
    # starts it with a CONNECTED event for every peer connected now.
    events = stub.WatchPeers(node_pb2.WatchPeersRequest(include_current=True), metadata=metadata)
    print("watching peer events (Ctrl+C to stop)", flush=True)
    try:
        for event in events:
            kind = node_pb2.PeerEvent.Type.Name(event.type).replace("TYPE_", "")
            peer = event.peer
            line = "%-12s  %s  %-8s  %s" % (kind, peer.peer_id, direction(peer), peer.address)
            if event.type == node_pb2.PeerEvent.TYPE_IDENTIFIED:
                line += "  %s" % peer.agent_version
            if event.reason:
                line += "  (%s)" % event.reason
            print(line, flush=True)
        print("the node closed the stream (it is stopping)")
    except KeyboardInterrupt:
        events.cancel()


def main():
    parser = argparse.ArgumentParser(description="Show a running agentnetwork node's status.")
    parser.add_argument("-data", "--data", default="./data",
                        help="the node's data directory (default ./data)")
    parser.add_argument("--endpoint", help="gRPC target instead of the one in DIR/node.status, "
                        "e.g. 127.0.0.1:50051 or unix:/path/to/api.sock")
    parser.add_argument("--token-file", help="file holding the bearer token (DIR/api.token)")
    parser.add_argument("--token", help="the bearer token itself")
    parser.add_argument("--watch", action="store_true",
                        help="then print peer events until Ctrl+C")
    args = parser.parse_args()

    endpoint, token = endpoint_and_token(args)
    metadata = [("authorization", "Bearer " + token)] if token else []
    print("endpoint:  %s" % endpoint)
    with grpc.insecure_channel(endpoint) as channel:
        stub = node_pb2_grpc.NodeStub(channel)
        try:
            show_status(stub, metadata)
            if args.watch:
                watch(stub, metadata)
        except grpc.RpcError as e:
            # e.code() is a grpc.StatusCode: UNAVAILABLE (node not running), UNAUTHENTICATED
            # (missing or wrong token), ...
            sys.exit("%s: %s" % (e.code().name, e.details()))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
