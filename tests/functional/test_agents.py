"""Agents' traffic between real nodes on 127.0.0.1: messages, requests, the durable inbox and
discovery, through the CLI, the Agent API (agent.proto) and the Python example.

Nodes speak /daan/message/1.0.0 and /daan/request/1.0.0 (the Go AgentNetwork's framing) to each
other; a message is in the receiver's DIR/inbox.db before `send` returns. Every wait is bounded.
"""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time

import harness
from harness import PEER_ID_RE, wait_until
from test_network import NetworkTestCase

import grpc
from agentnetwork.v1 import agent_pb2, agent_pb2_grpc

import grpc_support

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples",
                       "python", "reverse_agents.py")
CONNECT_TIMEOUT = 15.0
# Discovery walks the DHT; provider records reach the peers closest to the key in a few hops.
DISCOVERY_TIMEOUT = 45.0
TEN_NODES = 10


class AgentTestCase(NetworkTestCase):
    def inbox(self, data, *extra):
        result = self.cli("inbox", "-data", data, "-json", *extra)
        self.assertEqual(result.rc, 0, result)
        return json.loads(result.out)

    def agent_stub(self, data):
        client = grpc_support.connect(data)
        self.addCleanup(client.close)
        return agent_pb2_grpc.AgentStub(client.channel), client.metadata

    def two_nodes(self, extra_a=()):
        a = self.data_dir("a")
        _, status = self.start_node(a, extra=list(extra_a))
        a_id, a_addr = status["node_id"], status["listen_addrs"][0]
        b, b_id, b_addr = self.start_peer("b", bootstrap=a_addr)
        self.wait_peers(b, [a_id], timeout=CONNECT_TIMEOUT)
        return (a, a_id, a_addr), (b, b_id, b_addr)


class MessagesTest(AgentTestCase):
    def test_send_lands_in_the_inbox_and_take_removes_it(self):
        (a, a_id, _), (b, b_id, _) = self.two_nodes()
        sent = self.cli("send", "-data", b, a_id, "hello, agent")
        self.assertEqual(sent.rc, 0, sent)
        self.assertIn(a_id, sent.out)
        # Binary payloads go through -file and come back as base64 in JSON.
        blob = bytes(range(256)) * 4
        path = os.path.join(self.tmp, "blob.bin")
        harness.write_bytes(path, blob)
        sent = self.cli("send", "-data", b, a_id, "-file", path)
        self.assertEqual(sent.rc, 0, sent)

        messages = self.inbox(a)
        self.assertEqual(len(messages), 2, messages)
        text, binary = messages
        self.assertEqual(text["from"], b_id)
        self.assertEqual(text["payload"], "hello, agent")
        self.assertEqual(text["payload_encoding"], "utf-8")
        self.assertRegex(text["received_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertGreater(binary["id"], text["id"])
        self.assertEqual(binary["payload_encoding"], "base64")
        self.assertEqual(base64.b64decode(binary["payload"]), blob)

        taken = self.cli("inbox", "-data", a, "-take", "-n", "1")
        self.assertEqual(taken.rc, 0, taken)
        self.assertIn("hello, agent", taken.out)
        remaining = self.inbox(a)
        self.assertEqual([m["id"] for m in remaining], [binary["id"]])

    def test_receive_stream_sees_stored_then_new_messages_and_ack_removes(self):
        (a, a_id, _), (b, _, _) = self.two_nodes()
        self.assertEqual(self.cli("send", "-data", b, a_id, "first").rc, 0)
        stub, metadata = self.agent_stub(a)
        stream = stub.ReceiveMessages(agent_pb2.ReceiveMessagesRequest(), metadata=metadata,
                                      timeout=30)
        received = []

        def read():
            for message in stream:
                received.append(message)
                if len(received) == 2:
                    return

        reader = threading.Thread(target=read)
        reader.start()
        wait_until(lambda: len(received) == 1, 10, message="the stored message on the stream")
        self.assertEqual(self.cli("send", "-data", b, a_id, "second").rc, 0)
        reader.join(10)
        stream.cancel()
        self.assertEqual([m.payload for m in received], [b"first", b"second"])
        acked = stub.AckMessages(agent_pb2.AckMessagesRequest(ids=[m.id for m in received]),
                                 metadata=metadata, timeout=10)
        self.assertEqual(acked.removed, 2)
        self.assertEqual(self.inbox(a), [])

    def test_request_without_a_serving_agent_is_answered_no_handler(self):
        (a, a_id, _), (b, _, _) = self.two_nodes()
        started = time.monotonic()
        result = self.cli("request", "-data", b, a_id, "anyone?")
        self.assertEqual(result.rc, 1, result)
        self.assertIn("no handler registered", result.err)
        # Answered at once, not left to the 30 s timeout.
        self.assertLess(time.monotonic() - started, 10, result)

    def test_request_served_by_an_agent_through_the_api(self):
        (a, a_id, _), (b, b_id, _) = self.two_nodes()
        stub, metadata = self.agent_stub(a)
        answers = []
        answer_ready = threading.Event()

        def answer_stream():
            answer_ready.wait(20)
            for answer in answers:
                yield answer

        calls = stub.ServeRequests(answer_stream(), metadata=metadata, timeout=60)
        seen = []

        def serve():
            for request in calls:
                seen.append(request)
                answers.append(agent_pb2.RequestAnswer(request_id=request.request_id,
                                                       payload=request.payload.upper()))
                answer_ready.set()
                return

        server = threading.Thread(target=serve)
        server.start()
        # The response headers say the node has registered the serving agent.
        calls.initial_metadata()
        result = self.cli("request", "-data", b, a_id, "shout this")
        server.join(10)
        self.assertEqual(result.rc, 0, result)
        self.assertEqual(result.out.strip(), "SHOUT THIS")
        self.assertEqual(getattr(seen[0], "from"), b_id)
        calls.cancel()

    def test_full_inbox_refuses_and_keeps_what_it_has(self):
        (a, a_id, _), (b, _, _) = self.two_nodes(extra_a=("-inbox-max-messages", "2"))
        for text in ("one", "two"):
            result = self.cli("send", "-data", b, a_id, text)
            self.assertEqual(result.rc, 0, result)
        refused = self.cli("send", "-data", b, a_id, "three")
        self.assertEqual(refused.rc, 1, refused)
        self.assertEqual([m["payload"] for m in self.inbox(a)], ["one", "two"])
        listed = self.cli("inbox", "-data", a)
        self.assertIn("1 refused", listed.out)
        with grpc_support.connect(a) as client:
            status = client.GetStatus()
        self.assertEqual(status.inbox_messages, 2)
        self.assertEqual(status.inbox_refused, 1)


class BadInputTest(AgentTestCase):
    def test_bad_cli_values_are_usage_errors_and_store_nothing(self):
        (a, a_id, _), (b, _, _) = self.two_nodes()
        cases = [
            (["send", "-data", b, "not-a-peer", "x"], "not-a-peer"),
            (["send", "-data", b, "/ip4/127.0.0.1/tcp/1", "x"], "/p2p/"),
            (["send", "-data", b, a_id], "TEXT"),
            (["send", "-data", b, a_id, "x", "-file", os.path.join(self.tmp, "f")], "not both"),
            (["request", "-data", b, a_id, "x", "-timeout", "31"], "-timeout"),
            (["request", "-data", b, a_id, "x", "-timeout", "zero"], "-timeout"),
            (["inbox", "-data", a, "-n", "0"], "-n"),
            (["discover", "-data", a, "/daan/capability/x", "-n", "101"], "-n"),
        ]
        for args, needle in cases:
            result = self.cli(*args)
            self.assertEqual(result.rc, 2, result)
            self.assertIn(needle, result.err, result)
        missing = self.cli("send", "-data", b, a_id, "-file", os.path.join(self.tmp, "absent"))
        self.assertEqual(missing.rc, 1, missing)
        self.assertEqual(self.inbox(a), [])

    def test_bad_node_options_are_refused_before_anything_starts(self):
        for option, value in (("-inbox-max-messages", "0"), ("-inbox-max-bytes", "-5"),
                              ("-daan-network", "maybe"), ("-pubsub", "maybe"),
                              ("-pubsub-router", "randomsub")):
            data = self.data_dir("bad%s" % option)
            result = self.cli("start", "-data", data, option, value)
            self.assertEqual(result.rc, 2, result)
            self.assertIn(option.lstrip("-"), result.err, result)
            self.assertFalse(os.path.exists(os.path.join(data, "inbox.db")), result)

    def test_bad_api_arguments_are_invalid_argument(self):
        (a, a_id, _), _ = self.two_nodes()
        stub, metadata = self.agent_stub(a)
        calls = [
            (stub.SendMessage, agent_pb2.SendMessageRequest(peer="")),
            (stub.SendMessage, agent_pb2.SendMessageRequest(peer="garbage", payload=b"x")),
            (stub.SendRequest, agent_pb2.SendRequestRequest(peer=a_id, timeout_ms=40000)),
            (stub.ListInbox, agent_pb2.ListInboxRequest(limit=5000)),
            (stub.Advertise, agent_pb2.AdvertiseRequest(namespace="")),
            (stub.Discover, agent_pb2.DiscoverRequest(namespace="/x", limit=500)),
            (stub.SendMessage, agent_pb2.SendMessageRequest(peer=a_id, payload=b"x")),
        ]
        for method, request in calls:
            with self.assertRaises(grpc.RpcError) as raised:
                method(request, metadata=metadata, timeout=20)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT,
                             (request, raised.exception.details()))
        self.assertEqual(self.inbox(a), [])


class DurableInboxTest(AgentTestCase):
    def test_inbox_survives_restart_and_kill_9(self):
        (a, a_id, _), (b, _, _) = self.two_nodes()
        for i in range(3):
            self.assertEqual(self.cli("send", "-data", b, a_id, "m%d" % i).rc, 0)
        restarted = self.cli("restart", "-data", a)
        self.assertEqual(restarted.rc, 0, restarted)
        self.assertEqual([m["payload"] for m in self.inbox(a)], ["m0", "m1", "m2"])

        # Messages acknowledged to the sender are on disk: a kill -9 right after loses none. (The
        # restarted node listens on a new port: B is given its address.)
        a_addr = self.status(a)["listen_addrs"][0]
        sent = self.cli("send", "-data", b, a_addr, "m3")
        self.assertEqual(sent.rc, 0, sent)
        pid = self.read_pid_file(a)
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not harness.process_alive(pid), 10, message="the killed node gone")
        self.start_node(a)
        self.assertEqual([m["payload"] for m in self.inbox(a)], ["m0", "m1", "m2", "m3"])

    def test_corrupt_inbox_is_reported_and_left_alone(self):
        data = self.data_dir("corrupt")
        os.makedirs(data, exist_ok=True)
        garbage = b"this is not an SQLite database\n" * 100
        path = os.path.join(data, "inbox.db")
        harness.write_bytes(path, garbage)
        self.track_data_dir(data)
        result = self.cli("start", "-data", data, "-listen", harness.LOOPBACK_ANY_PORT)
        self.assertNotEqual(result.rc, 0, result)
        self.assertIn("inbox.db", result.text)
        self.assertEqual(harness.read_bytes(path), garbage)


class ExampleAndDiscoveryTest(AgentTestCase):
    def test_python_example_reverse_agents(self):
        (a, _, _), (b, _, _) = self.two_nodes()
        env = harness.base_env()
        server = self.spawn([sys.executable, EXAMPLE, "serve", "-data", a, "--count", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        asked = subprocess.run([sys.executable, EXAMPLE, "ask", "-data", b, "hello, agents"],
                               capture_output=True, text=True, env=env, timeout=90)
        self.assertEqual(asked.returncode, 0, asked)
        self.assertEqual(asked.stdout.strip(), "stnega ,olleh")
        out, err = server.communicate(timeout=20)
        self.assertEqual(server.returncode, 0, (out, err))
        self.assertIn(b"answered request", out)

    def test_ten_nodes_advertise_discover_and_message(self):
        hub, hub_id, hub_addr = self.start_peer("n0")
        nodes = [(hub, hub_id, hub_addr)]
        for i in range(1, TEN_NODES):
            nodes.append(self.start_peer("n%d" % i, bootstrap=hub_addr))
        provider, provider_id, _ = nodes[4]
        seeker = nodes[-1][0]
        advertised = self.cli("advertise", "-data", provider, "/daan/capability/test")
        self.assertEqual(advertised.rc, 0, advertised)

        found = {}

        def discovered():
            result = self.cli("discover", "-data", seeker, "/daan/capability/test", "-json",
                              timeout=80)
            if result.rc != 0:
                return False
            found["peers"] = json.loads(result.out)
            return any(p["peer_id"] == provider_id for p in found["peers"])

        wait_until(discovered, DISCOVERY_TIMEOUT, interval=1,
                   message=lambda: "the provider in %s" % found.get("peers"))
        entry = [p for p in found["peers"] if p["peer_id"] == provider_id][0]
        self.assertTrue(entry["addresses"], entry)

        # Each node messages the next by ID alone: dialled through what the node knows or the
        # DHT.
        for i, (data, _, _) in enumerate(nodes):
            target = nodes[(i + 1) % len(nodes)][1]
            result = self.cli("send", "-data", data, target, "from n%d" % i, timeout=60)
            self.assertEqual(result.rc, 0, result)
        for i, (data, _, _) in enumerate(nodes):
            payloads = [m["payload"] for m in self.inbox(data)]
            self.assertEqual(payloads, ["from n%d" % ((i - 1) % len(nodes))])


if __name__ == "__main__":
    import unittest
    unittest.main()
