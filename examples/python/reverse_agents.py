#!/usr/bin/env python3
"""Two agents on two agentnetwork nodes, through the nodes' Agent API (agent.proto).

The serving agent advertises the capability "/daan/capability/reverse" on its node and answers
every request with the request's text reversed. The asking agent, on another node, discovers
who offers that capability through the DHT and asks it to reverse a text.

    # two nodes that know each other (B bootstraps from A)
    agentnetwork start -data ./a -listen /ip4/127.0.0.1/tcp/4001
    agentnetwork start -data ./b -listen /ip4/127.0.0.1/tcp/4002 \\
        -bootstrap "$(agentnetwork id -data ./a | head -1)"   # A's address with /p2p/
    python3 reverse_agents.py serve -data ./a &               # serves until Ctrl+C
    python3 reverse_agents.py ask -data ./b "hello, agents"   # prints "stnega ,olleh"

Requirements and the generated modules: as for node_client.py (see its top). The modules of
both node.proto and agent.proto are needed:

    protoc -I proto --python_out=gen --grpc_python_out=gen \\
        --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \\
        proto/agentnetwork/v1/node.proto proto/agentnetwork/v1/agent.proto
"""

import argparse
import json
import os
import queue
import sys
import time

try:
    import grpc
    from agentnetwork.v1 import agent_pb2, agent_pb2_grpc
except ImportError as e:
    sys.exit("reverse_agents.py: %s\nInstall python3-grpcio and python3-protobuf, generate the "
             "modules from proto/ (see the top of node_client.py) and put them on PYTHONPATH."
             % e)

CAPABILITY = "/daan/capability/reverse"
CALL_TIMEOUT_SECONDS = 70
# Payloads of /daan messages go up to 12 MiB; gRPC's default limit is 4 MiB.
MAX_MESSAGE_BYTES = 13 * 1024 * 1024


def open_channel(data_dir):
    """A channel to the node of `data_dir` and the call metadata (its token, if any)."""
    status_file = os.path.join(data_dir, "node.status")
    try:
        with open(status_file) as f:
            endpoint = json.load(f).get("grpc")
    except (OSError, ValueError) as e:
        sys.exit("cannot read %s (is the node running?): %s" % (status_file, e))
    if not endpoint:
        sys.exit("%s names no \"grpc\" endpoint" % status_file)
    metadata = []
    token_file = os.path.join(data_dir, "api.token")
    if os.path.exists(token_file):
        with open(token_file) as f:
            metadata = [("authorization", "Bearer " + f.read().strip())]
    channel = grpc.insecure_channel(endpoint, options=[
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    return channel, metadata


def serve(args):
    channel, metadata = open_channel(args.data)
    stub = agent_pb2_grpc.AgentStub(channel)
    answers = queue.Queue()

    def answer_stream():
        # What we send on ServeRequests: one RequestAnswer per request, as they are computed.
        while True:
            answer = answers.get()
            if answer is None:
                return
            yield answer

    requests = stub.ServeRequests(answer_stream(), metadata=metadata)
    # The node sends the response headers once we are registered as serving; advertise only
    # then, so that a peer that finds us can ask at once.
    requests.initial_metadata()
    advertised = stub.Advertise(agent_pb2.AdvertiseRequest(namespace=CAPABILITY),
                                metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)
    print("serving %s (advertised to %d DHT peers)" % (CAPABILITY, advertised.peers), flush=True)
    served = 0
    try:
        for request in requests:
            try:
                text = request.payload.decode("utf-8")
                answers.put(agent_pb2.RequestAnswer(request_id=request.request_id,
                                                    payload=text[::-1].encode("utf-8")))
            except UnicodeDecodeError:
                answers.put(agent_pb2.RequestAnswer(request_id=request.request_id, error=True,
                                                    payload=b"the request is not UTF-8 text"))
            served += 1
            print("answered request %d from %s" % (request.request_id, getattr(request, "from")),
                  flush=True)
            if args.count and served >= args.count:
                # Closing our side ends the call once the answers are out: the node then
                # finishes the stream, which ends this loop.
                answers.put(None)
    except KeyboardInterrupt:
        requests.cancel()
    finally:
        answers.put(None)
        channel.close()


def ask(args):
    channel, metadata = open_channel(args.data)
    stub = agent_pb2_grpc.AgentStub(channel)
    deadline = time.monotonic() + args.wait
    peers = []
    # The provider record may need a moment to reach the DHT peers we ask.
    while not peers:
        peers = stub.Discover(agent_pb2.DiscoverRequest(namespace=CAPABILITY, limit=5),
                              metadata=metadata, timeout=CALL_TIMEOUT_SECONDS).peers
        if not peers:
            if time.monotonic() > deadline:
                sys.exit("nobody offers %s" % CAPABILITY)
            time.sleep(1)
    peer = peers[0]
    print("found %s at %s" % (peer.peer_id, ", ".join(peer.addresses) or "(no address)"),
          file=sys.stderr)
    response = stub.SendRequest(
        agent_pb2.SendRequestRequest(peer=peer.peer_id, payload=args.text.encode("utf-8"),
                                     timeout_ms=10000),
        metadata=metadata, timeout=CALL_TIMEOUT_SECONDS)
    channel.close()
    if response.error:
        sys.exit("the agent answered with an error: %s" % response.payload.decode("utf-8", "replace"))
    print(response.payload.decode("utf-8"))


def main():
    parser = argparse.ArgumentParser(description="Two agents: one reverses text, one asks it to.")
    parser.add_argument("-data", "--data", default="./data",
                        help="the node's data directory (default ./data)")
    roles = parser.add_subparsers(dest="role", required=True)
    serving = roles.add_parser("serve", help="advertise the capability and answer requests")
    serving.add_argument("--count", type=int, default=0,
                         help="stop after answering this many requests (default: never)")
    asking = roles.add_parser("ask", help="discover the capability and ask it to reverse TEXT")
    asking.add_argument("text")
    asking.add_argument("--wait", type=float, default=30,
                        help="seconds to keep looking for a provider (default 30)")
    # The same -data option after the role, as users tend to write it.
    for sub in (serving, asking):
        sub.add_argument("-data", "--data", dest="data", default=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        (serve if args.role == "serve" else ask)(args)
    except grpc.RpcError as e:
        sys.exit("%s: %s" % (e.code().name, e.details()))


if __name__ == "__main__":
    main()
