"""Broadcast between real nodes on 127.0.0.1: gossipsub through the CLI (`pub`, `sub`, `topics`)
and the PubSub API (pubsub.proto).

Topology of the big test: two hubs, every other node bootstrapped to both (DHT clients, out of
the DAAN network, so that nobody learns of anybody else). A node relays a topic only when it is
subscribed to it, so the hubs subscribe too; the subscribed leaves are in the hubs' meshes. Every
publication is waited for by message count (`sub -n N`), never by time; before publishing, the
test waits until the meshes and the publisher's view of the topic are in place, so that what it
then asserts does not depend on timing. Every wait is bounded.
"""

import base64
import json
import os
import re
import subprocess
import threading
import time

import harness
from harness import LOOPBACK_ANY_PORT, PEER_ID_RE, RFC3339_RE, wait_until
from test_network import NetworkTestCase

from agentnetwork.v1 import pubsub_pb2, pubsub_pb2_grpc

import grpc
import grpc_support

NODES = 20
TOPIC = "agents/broadcast"
# Starting 20 nodes at once on a loaded machine (or under ASan) takes a while.
START_TIMEOUT = 60.0
# Heartbeats are 1 s: meshes form within a few.
MESH_TIMEOUT = 30.0
DELIVERY_TIMEOUT = 30.0
# Options that keep a node cheap and its peers exactly the ones a test gives it.
QUIET_NODE = ["-dht-mode", "client", "-daan-network", "off"]
HEX_RE = re.compile(r"^[0-9a-f]*$")
# Go's time.Time in JSON: RFC 3339 with up to nine fraction digits, trailing zeros trimmed.
GO_TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?(Z|[+-]\d\d:\d\d)$")


class Subscriber:
    """A running `agentnetwork sub TOPIC -n N [-json]`; its output is read on threads."""

    def __init__(self, test, data, topic, count, extra=(), json_lines=True):
        self.data, self.topic, self.count, self.json_lines = data, topic, count, json_lines
        self.proc = test.spawn_binary(["sub", "-data", data, topic, "-n", str(count)]
                                      + (["-json"] if json_lines else []) + list(extra),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out_lines, self.err_lines = [], []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout,
                                                                     self.out_lines)),
                         threading.Thread(target=self._read, args=(self.proc.stderr,
                                                                     self.err_lines))]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @staticmethod
    def _read(stream, lines):
        for line in iter(stream.readline, b""):
            lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    def describe(self):
        return "sub on %s (exit %s)\nstdout: %s\nstderr: %s" % (
            os.path.basename(self.data), self.proc.poll(), self.out_lines, self.err_lines)

    def wait_subscribed(self, timeout=harness.CLI_TIMEOUT):
        wait_until(lambda: any(l == "subscribed to " + self.topic for l in self.err_lines)
                   or self.proc.poll() is not None, timeout,
                   message=lambda: "'subscribed to' from " + self.describe())
        if self.proc.poll() is not None and self.proc.returncode != 0:
            raise AssertionError("sub failed: " + self.describe())

    def messages(self, timeout=DELIVERY_TIMEOUT):
        """Waits for the process to exit after its N messages; returns them (parsed JSON, or
        the lines of text)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("no %d messages within %ss: %s" % (self.count, timeout,
                                                                     self.describe()))
        for reader in self._readers:
            reader.join(10)
        if self.proc.returncode != 0:
            raise AssertionError("sub exited with %d: %s" % (self.proc.returncode,
                                                             self.describe()))
        if not self.json_lines:
            return list(self.out_lines)
        return [json.loads(line) for line in self.out_lines]


class PubSubTestCase(NetworkTestCase):
    def start_quiet_nodes(self, names, bootstrap):
        """Starts nodes concurrently, each bootstrapped to `bootstrap` (a list of addresses);
        returns [(data dir, peer ID)]."""
        dirs = [self.data_dir(name) for name in names]
        starters = [self.spawn_binary(["start", "-data", d, "-listen", LOOPBACK_ANY_PORT,
                                       "-bootstrap", ",".join(bootstrap)] + QUIET_NODE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for d in dirs]
        deadline = time.monotonic() + START_TIMEOUT
        for data, proc in zip(dirs, starters):
            try:
                out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.fail("start -data %s did not finish within %ss" % (data, START_TIMEOUT))
            self.assertEqual(proc.returncode, 0, "start -data %s: %r %r" % (data, out, err))
        return [(d, self.status(d)["node_id"]) for d in dirs]

    def wait_connected(self, data, peer_ids, timeout=START_TIMEOUT):
        """Waits until the node is connected to (at least) every one of peer_ids."""
        self.wait_status(data, lambda status: set(peer_ids) <= {
            p.get("peer_id") for p in status["peers"]}, timeout,
            "%s to be connected to %s" % (os.path.basename(data), sorted(peer_ids)))

    def pubsub(self, data_dir, method, **fields):
        """One unary PubSub call on the node of `data_dir` (a fresh channel: nodes restart)."""
        with grpc_support.connect(data_dir) as client:
            stub = pubsub_pb2_grpc.PubSubStub(client.channel)
            request = getattr(pubsub_pb2, {
                "ListPeers": "ListTopicPeersRequest"}.get(method, method + "Request"))(**fields)
            return getattr(stub, method)(request, metadata=client.metadata,
                                         timeout=grpc_support.CALL_TIMEOUT)

    def topic_peers(self, data, topic):
        answer = self.pubsub(data, "ListPeers", topic=topic)
        return set(answer.peer_ids), set(answer.mesh_peer_ids)

    def wait_known_subscribers(self, data, topic, peer_ids, timeout=MESH_TIMEOUT):
        """Waits until the node knows every one of peer_ids to be subscribed to the topic."""
        last = {}

        def known():
            last["peers"] = self.topic_peers(data, topic)[0]
            return set(peer_ids) <= last["peers"]

        wait_until(known, timeout, interval=0.2,
                   message=lambda: "%s to know the subscribers %s (knows %s)" % (
                       os.path.basename(data), sorted(peer_ids), sorted(last.get("peers", []))))

    def wait_in_meshes(self, hubs, topic, peer_ids, timeout=MESH_TIMEOUT):
        """Waits until every one of peer_ids is in the mesh of at least one hub."""
        last = {}

        def meshed():
            last["mesh"] = set()
            for hub in hubs:
                last["mesh"] |= self.topic_peers(hub, topic)[1]
            return set(peer_ids) <= last["mesh"]

        wait_until(meshed, timeout, interval=0.2,
                   message=lambda: "%s in the hubs' meshes (have %s)" % (
                       sorted(set(peer_ids) - last.get("mesh", set())),
                       sorted(last.get("mesh", []))))

    def pub(self, data, topic, *args):
        result = self.cli("pub", "-data", data, topic, *args)
        self.assertEqual(result.rc, 0, result)
        self.assertRegex(result.out, r"^published \d+ bytes to .* \(message ID [0-9a-f]+\)\n$")
        return result

    def assert_envelope_message(self, message, publisher_id, topic):
        self.assertEqual(message["from"], publisher_id, message)
        self.assertEqual(message["sender"], publisher_id, message)
        self.assertEqual(message["topic"], topic, message)
        self.assertFalse(message["envelope_malformed"], message)
        self.assertRegex(message["timestamp"], GO_TIMESTAMP_RE)
        self.assertRegex(message["timestamp"], RFC3339_RE)
        self.assertRegex(message["seqno"], HEX_RE)
        self.assertEqual(len(message["seqno"]), 16, message)
        self.assertTrue(message["id"].endswith(message["seqno"]), message)
        self.assertRegex(message["received_from"], PEER_ID_RE)
        self.assertEqual(message["dropped"], 0, message)


class BroadcastTest(PubSubTestCase):
    def test_twenty_nodes_every_subscriber_gets_every_message_once_and_a_restart_rejoins(self):
        h0 = self.data_dir("hub0")
        _, status = self.start_node(h0, extra=QUIET_NODE)
        h0_id, h0_addr = status["node_id"], status["listen_addrs"][0]
        h1 = self.data_dir("hub1")
        _, status = self.start_node(h1, extra=["-bootstrap", h0_addr] + QUIET_NODE)
        h1_id, h1_addr = status["node_id"], status["listen_addrs"][0]
        leaves = self.start_quiet_nodes(["leaf%02d" % i for i in range(NODES - 2)],
                                        [h0_addr, h1_addr])
        hub_ids = {h0_id, h1_id}
        for data, _ in leaves:
            self.wait_connected(data, hub_ids)

        subscribed_leaves = leaves[:6]
        publisher, publisher_id = leaves[-1]
        messages = ["message %d from the publisher" % i for i in range(5)]
        sentinel = "the last one"
        after_restart = "after the restart"
        # The hubs relay only while subscribed: their subscribers stay to the end.
        hub_subscribers = [Subscriber(self, data, TOPIC, len(messages) + 2) for data in (h0, h1)]
        subscribers = [Subscriber(self, data, TOPIC, len(messages))
                       for data, _ in subscribed_leaves[1:-1]]
        # The leaf that restarts later stays subscribed until then: a leaf that unsubscribes
        # is kept out of the hubs' meshes for a backoff (gossipsub's PRUNE backoff).
        restarted, restarted_id = subscribed_leaves[-1]
        until_restart = Subscriber(self, restarted, TOPIC, 100)
        # One subscriber also waits for a message published after all others have been
        # received: a duplicate of any of them arriving late would take its place.
        watcher = Subscriber(self, subscribed_leaves[0][0], TOPIC, len(messages) + 1)
        for subscriber in hub_subscribers + subscribers + [watcher, until_restart]:
            subscriber.wait_subscribed()

        self.wait_in_meshes([h0, h1], TOPIC, [i for _, i in subscribed_leaves])
        self.wait_known_subscribers(publisher, TOPIC, hub_ids)
        listed = self.cli("topics", "-data", h0, "-json")
        self.assertEqual(listed.rc, 0, listed)
        (entry,) = json.loads(listed.out)
        self.assertEqual(entry["topic"], TOPIC)
        self.assertLessEqual({h1_id} | {i for _, i in subscribed_leaves}, set(entry["peers"]))
        table = self.cli("topics", "-data", h0)
        self.assertEqual(table.rc, 0, table)
        self.assertRegex(table.out, r"(?m)^TOPIC\s+PEERS\s+MESH\n%s\s+\d+\s+\d+$" % TOPIC)

        for text in messages:
            self.pub(publisher, TOPIC, text)
        for subscriber in subscribers:
            got = subscriber.messages()
            self.assertEqual(sorted(m["data"] for m in got), sorted(messages),
                             subscriber.describe())
            for message in got:
                self.assert_envelope_message(message, publisher_id, TOPIC)
                self.assertEqual(message["data_encoding"], "utf-8", message)
        self.pub(publisher, TOPIC, sentinel)
        got = watcher.messages()
        self.assertEqual(sorted(m["data"] for m in got), sorted(messages + [sentinel]),
                         watcher.describe())
        self.assertEqual(len({m["id"] for m in got}), len(messages) + 1, got)

        # A subscribed leaf restarts (same key, same options): its subscriber is told that the
        # node ended the stream; the node rejoins the topic and the hubs' meshes with the next
        # subscriber, and hears the next publication.
        wait_until(lambda: len(until_restart.out_lines) == len(messages) + 1, DELIVERY_TIMEOUT,
                   message=lambda: "6 messages at " + until_restart.describe())
        result = self.cli("restart", "-data", restarted)
        self.assertEqual(result.rc, 0, result)
        until_restart.proc.wait(timeout=harness.CLI_TIMEOUT)
        self.assertEqual(until_restart.proc.returncode, 1, until_restart.describe())
        wait_until(lambda: any("ended the subscription after 6 of 100" in line
                               for line in until_restart.err_lines), 10,
                   message=lambda: "the end told by " + until_restart.describe())
        self.wait_connected(restarted, hub_ids)
        again = Subscriber(self, restarted, TOPIC, 1)
        again.wait_subscribed()
        self.wait_in_meshes([h0, h1], TOPIC, [restarted_id])
        self.pub(publisher, TOPIC, after_restart)
        (message,) = again.messages()
        self.assertEqual(message["data"], after_restart)
        self.assert_envelope_message(message, publisher_id, TOPIC)
        self.assertIn(message["received_from"], hub_ids)
        # The hubs heard everything, once, from a peer in the topic: the publisher, the other hub
        # or a subscribed leaf that forwarded it first (leaves in the hubs' meshes forward too).
        in_topic = hub_ids | {publisher_id} | {i for _, i in subscribed_leaves}
        for subscriber in hub_subscribers:
            got = subscriber.messages()
            self.assertEqual(sorted(m["data"] for m in got),
                             sorted(messages + [sentinel, after_restart]), subscriber.describe())
            self.assertLessEqual({m["received_from"] for m in got}, in_topic)


class EnvelopeTest(PubSubTestCase):
    def test_raw_mode_malformed_envelopes_and_own_messages(self):
        a = self.data_dir("a")
        _, status = self.start_node(a, extra=QUIET_NODE)
        a_id, a_addr = status["node_id"], status["listen_addrs"][0]
        (b, b_id), = self.start_quiet_nodes(["b"], [a_addr])
        self.wait_peers(b, [a_id])

        topic = "envelopes"
        raw_sub = Subscriber(self, b, topic, 3, ["-raw"])
        enveloped_sub = Subscriber(self, b, topic, 3)
        own_sub = Subscriber(self, a, topic, 3)
        for subscriber in (raw_sub, enveloped_sub, own_sub):
            subscriber.wait_subscribed()
        self.wait_known_subscribers(a, topic, [b_id])
        self.wait_in_meshes([a], topic, [b_id])

        malformed = '{"topic":"envelopes","payload":"not base64!"}'
        binary = bytes(range(256))
        path = os.path.join(self.tmp, "binary.bin")
        harness.write_bytes(path, binary)
        self.pub(a, topic, "wrapped")
        self.pub(a, topic, "-raw", malformed)
        self.pub(a, topic, "-raw", "-file", path)

        by_kind = {}
        for name, subscriber in (("raw", raw_sub), ("enveloped", enveloped_sub),
                                 ("own", own_sub)):
            got = subscriber.messages()
            self.assertEqual(len(got), 3, subscriber.describe())
            for message in got:
                self.assertEqual(message["from"], a_id, message)
                self.assertEqual(message["topic"], topic, message)
            by_kind[name] = got

        # Raw: the gossipsub data as published; the first is the Go envelope itself, in Go's
        # field order.
        wrapped = [m for m in by_kind["raw"] if m["data"].startswith('{"topic":"envelopes","s')]
        self.assertEqual(len(wrapped), 1, by_kind["raw"])
        envelope = json.loads(wrapped[0]["data"])
        self.assertEqual(list(envelope), ["topic", "sender", "timestamp", "payload"])
        self.assertEqual(envelope["topic"], topic)
        self.assertEqual(envelope["sender"], a_id)
        self.assertRegex(envelope["timestamp"], GO_TIMESTAMP_RE)
        self.assertEqual(base64.b64decode(envelope["payload"]), b"wrapped")
        self.assertIn(malformed, [m["data"] for m in by_kind["raw"]])
        binaries = [m for m in by_kind["raw"] if m["data_encoding"] == "base64"]
        self.assertEqual([base64.b64decode(m["data"]) for m in binaries], [binary],
                         by_kind["raw"])
        for message in by_kind["raw"]:
            self.assertFalse(message["envelope_malformed"], message)
            self.assertEqual(message["sender"], "", message)

        # Unwrapped: the envelope's payload and fields; data that is not an envelope comes
        # unchanged and flagged, never dropped.
        for kind in ("enveloped", "own"):
            got = by_kind[kind]
            good = [m for m in got if not m["envelope_malformed"]]
            self.assertEqual([m["data"] for m in good], ["wrapped"], got)
            self.assertEqual(good[0]["sender"], a_id)
            self.assertEqual(good[0]["timestamp"], envelope["timestamp"])
            flagged = [m for m in got if m["envelope_malformed"]]
            self.assertEqual(len(flagged), 2, got)
            self.assertIn(malformed, [m["data"] for m in flagged])
            self.assertIn(base64.b64encode(binary).decode(), [m["data"] for m in flagged])
            for message in flagged:
                self.assertEqual((message["sender"], message["timestamp"]), ("", ""), message)
        # The node's own subscriber hears its own publications, received from itself.
        self.assertEqual({m["received_from"] for m in by_kind["own"]}, {a_id})
        self.assertEqual({m["received_from"] for m in by_kind["enveloped"]}, {a_id})

    def test_text_output(self):
        a = self.data_dir("a")
        self.start_node(a, extra=QUIET_NODE)
        a_id = self.status(a)["node_id"]
        sub = Subscriber(self, a, "t", 2, json_lines=False)
        sub.wait_subscribed()
        self.pub(a, "t", "hello there\n")
        self.pub(a, "t", "-raw", "two\nlines")
        self.assertEqual(sub.messages(), [
            "%s  hello there" % a_id,
            "%s (not an envelope)  (binary, 9 bytes) base64:%s" % (
                a_id, base64.b64encode(b"two\nlines").decode()),
        ])


class UsageTest(PubSubTestCase):
    def test_bad_arguments_are_usage_errors_and_publish_nothing(self):
        a = self.data_dir("a")
        self.start_node(a, extra=QUIET_NODE)
        topic = "t"
        sub = Subscriber(self, a, topic, 1)
        sub.wait_subscribed()

        too_big = os.path.join(self.tmp, "too-big.bin")
        harness.write_bytes(too_big, b"x" * (1024 * 1024))
        # Under gossipsub's limit alone, over it once wrapped in the envelope (base64).
        big_in_envelope = os.path.join(self.tmp, "big-in-envelope.bin")
        harness.write_bytes(big_in_envelope, b"x" * (900 * 1024))
        cases = [
            (("pub", "-data", a, "", "text"), ["topic is empty"]),
            (("pub", "-data", a, "x" * 257, "text"), ["257 bytes", "256"]),
            (("pub", "-data", a, topic, "-file", too_big), ["1048576 bytes", "1047552"]),
            (("pub", "-data", a, topic, "-file", big_in_envelope),
             ["INVALID_ARGUMENT", "envelope", "1047552"]),
            (("pub", "-data", a, topic), ["TOPIC and TEXT"]),
            (("pub", "-data", a, topic, "text", "-file", too_big), ["either TEXT or -file"]),
            (("pub", "-data", a), ["needs a TOPIC"]),
            (("sub", "-data", a, topic, "-n", "0"), ["-n must be a number"]),
            (("sub", "-data", a, topic, "-n", "many"), ["-n must be a number"]),
            (("sub", "-data", a, ""), ["topic is empty"]),
            (("sub", "-data", a, "y" * 300), ["300 bytes"]),
            (("topics", "-data", a, "extra"), []),
        ]
        for args, needles in cases:
            with self.subTest(args=[arg[:20] for arg in args]):
                self.assert_usage_error(self.cli(*args), *needles)

        # The API refuses the same arguments (a client that skips the CLI's checks).
        for fields, needle in (({"topic": "", "data": b"x"}, "topic is empty"),
                               ({"topic": "z" * 257, "data": b"x"}, "over the limit"),
                               ({"topic": topic, "data": b"x" * (900 * 1024)}, "envelope")):
            with self.assertRaises(grpc.RpcError) as raised:
                self.pubsub(a, "Publish", **fields)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(needle, raised.exception.details())

        # Nothing of the above was published: the one message the subscriber gets is this.
        self.pub(a, topic, "the only message")
        (message,) = sub.messages()
        self.assertEqual(message["data"], "the only message")

    def test_pubsub_off(self):
        a = self.data_dir("a")
        self.start_node(a, extra=QUIET_NODE + ["-pubsub", "off"])
        for args in (("pub", "-data", a, "t", "text"), ("sub", "-data", a, "t"),
                     ("topics", "-data", a)):
            result = self.cli(*args)
            self.assertEqual(result.rc, 1, result)
            self.assertIn("FAILED_PRECONDITION: pubsub is off (-pubsub off)", result.err, result)


if __name__ == "__main__":
    import unittest
    unittest.main()
