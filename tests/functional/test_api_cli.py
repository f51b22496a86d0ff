"""The CLI commands that talk to a running node over its control API (SPEC sections 1, 3, 5):
id, peers, connect, ping, find, the live status, and stop through Shutdown with the signal path
as fallback.

Every command finds the node's endpoint from -data alone (the "grpc" key of node.status). Exit
codes: 0 ok, 1 failure, 2 usage error (checked before the node is asked, or INVALID_ARGUMENT from
the node), 3 no node running. Errors are one line "error: ..." on stderr.

Nodes listen on 127.0.0.1 only; every wait is bounded and generous. The harness stops every node
in its cleanup, even when a test fails.
"""

import json
import os
import re
import signal
import unittest

import harness
from harness import LOOPBACK_ANY_PORT, PEER_ID_RE, port_of, process_alive, wait_until

AGENT_VERSION = "agentnetwork/0.1.0"
PING_PROTOCOL = "/ipfs/ping/1.0.0"
# Every field of the proto's Peer message, as `peers -json` names them.
PEER_FIELDS = {"peer_id", "address", "direction", "agent_version", "protocol_version",
               "protocols", "listen_addrs", "connected_at_unix_ms", "stream_count"}
CONNECT_TIMEOUT = 10.0


def strip_p2p(multiaddr):
    """/ip4/H/tcp/P/p2p/ID -> /ip4/H/tcp/P"""
    return re.sub(r"/p2p/[^/]+$", "", multiaddr)


class ApiCliTest(harness.NodeTestCase):

    # ---- helpers ----

    def start_peer(self, name):
        """Starts a node in <tmp>/<name>; returns (data dir, node ID, its dialable address)."""
        data = self.data_dir(name)
        _, status = self.start_node(data, listen=LOOPBACK_ANY_PORT)
        node_id = status["node_id"]
        self.assertRegex(node_id, PEER_ID_RE)
        self.assertTrue(status.get("grpc"), "node.status names no control API endpoint: %r"
                        % status)
        self.assertEqual(len(status["listen_addrs"]), 1, status)
        address = status["listen_addrs"][0]
        self.assertTrue(address.endswith("/p2p/" + node_id), address)
        return data, node_id, address

    def other_peer_id(self):
        """The peer ID of a key that no running node has."""
        result = self.cli("keygen", "-data", os.path.join(self.tmp, "other-key"))
        self.assertEqual(result.rc, 0, result)
        match = re.search(r"(12D3KooW[1-9A-HJ-NP-Za-km-z]{44})", result.out)
        self.assertTrue(match, result)
        return match.group(1)

    def assert_one_line_error(self, result, rc, *needles):
        self.assertEqual(result.rc, rc, result)
        lines = result.err.strip().splitlines()
        self.assertEqual(len(lines), 1, "expected a one-line error: %r" % result)
        self.assertTrue(lines[0].startswith("error: "), result)
        for needle in needles:
            self.assertIn(needle, lines[0], result)
        return lines[0]

    def peers_json(self, data):
        result = self.cli("peers", "-data", data, "-json")
        self.assertEqual(result.rc, 0, result)
        peers = json.loads(result.out)
        self.assertIsInstance(peers, list, result)
        return peers

    def wait_identified_peer(self, data, peer_id):
        """Waits until `peers -json` of data lists peer_id with its agent version (identify
        done); returns that entry."""
        last = {}

        def check():
            last["peers"] = self.peers_json(data)
            for peer in last["peers"]:
                if peer["peer_id"] == peer_id and peer["agent_version"]:
                    return peer
            return None

        return wait_until(check, CONNECT_TIMEOUT, interval=0.1,
                          message=lambda: "%s identified by %s (peers: %r)" % (
                              peer_id, os.path.basename(data), last.get("peers")))

    def connect(self, data, address):
        result = self.cli("connect", address, "-data", data)
        self.assertEqual(result.rc, 0, result)
        return result

    # ---- id ----

    def test_id_prints_the_peer_id_and_json(self):
        data, node_id, address = self.start_peer("a")
        result = self.cli("id", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertEqual(result.out, node_id + "\n")
        self.assertEqual(result.err, "")

        result = self.cli("id", "-data", data, "-json")
        self.assertEqual(result.rc, 0, result)
        info = json.loads(result.out)
        self.assertEqual(set(info), {"peer_id", "agent_version", "listen_addrs", "protocols"})
        self.assertEqual(info["peer_id"], node_id)
        self.assertEqual(info["agent_version"], AGENT_VERSION)
        self.assertEqual(info["listen_addrs"], [address])
        self.assertIn(PING_PROTOCOL, info["protocols"])

    # ---- connect, peers, ping, find, live status ----

    def test_connect_then_peers_ping_find_and_live_status(self):
        data1, id1, _ = self.start_peer("one")
        data2, id2, address2 = self.start_peer("two")

        result = self.cli("peers", "-data", data1)
        self.assertEqual(result.rc, 0, result)
        self.assertEqual(result.out, "0 peers connected\n")

        result = self.connect(data1, address2)
        self.assertEqual(result.out, "connected to %s (%s)\n" % (id2, strip_p2p(address2)))

        # The table of node one: a header, node two (outbound, to its listen port), the count.
        self.wait_identified_peer(data1, id2)
        result = self.cli("peers", "-data", data1)
        self.assertEqual(result.rc, 0, result)
        lines = result.out.splitlines()
        self.assertEqual(len(lines), 3, result)
        self.assertEqual(lines[0].split(), ["PEER", "ID", "DIRECTION", "ADDRESS", "AGENT"])
        self.assertEqual(lines[1].split(), [id2, "outbound", strip_p2p(address2), AGENT_VERSION])
        self.assertEqual(lines[2], "1 peer connected")

        # Node two sees node one as inbound, with every Peer field.
        peer = self.wait_identified_peer(data2, id1)
        self.assertEqual(set(peer), PEER_FIELDS)
        self.assertEqual(peer["direction"], "inbound")
        self.assertEqual(peer["agent_version"], AGENT_VERSION)
        self.assertIn(PING_PROTOCOL, peer["protocols"])
        self.assertTrue(peer["address"].startswith("/ip4/127.0.0.1/tcp/"), peer)
        self.assertIsInstance(peer["connected_at_unix_ms"], int)
        self.assertGreater(peer["connected_at_unix_ms"], 0)
        self.assertIsInstance(peer["stream_count"], int)

        # Connecting again reuses the connection: still one peer.
        self.connect(data1, address2)
        self.assertEqual([p["peer_id"] for p in self.peers_json(data1)], [id2])

        result = self.cli("ping", id2, "-n", "2", "-data", data1)
        self.assertEqual(result.rc, 0, result)
        lines = result.out.splitlines()
        self.assertEqual(len(lines), 3, result)
        for line in lines[:2]:
            self.assertRegex(line, r"^PONG from %s: time=\d+\.\d{3} ms$" % id2)
        self.assertRegex(lines[2], r"^2 pings, 2 ok, min/avg/max = "
                                   r"\d+\.\d{3}/\d+\.\d{3}/\d+\.\d{3} ms$")
        self.assertEqual(result.err, "")

        result = self.cli("find", id2, "-data", data1)
        self.assertEqual(result.rc, 0, result)
        self.assertIn(id2, result.out)
        self.assertRegex(result.out, r"(?m)^Connected:\s+yes$")
        self.assertIn("  - %s\n" % strip_p2p(address2), result.out)

        # status: the live peer count, with no fallback notice.
        result = self.cli("status", "-data", data1)
        self.assertEqual(result.rc, 0, result)
        self.assertRegex(result.out, r"(?m)^Peers:\s+1$")
        self.assertEqual(result.err, "")
        rc, status = self.status_json(data1)
        self.assertEqual(rc, 0)
        self.assertEqual(status["peer_count"], 1, status)
        self.assertEqual([p["peer_id"] for p in status["peers"]], [id2])
        self.assertEqual(status["peers"][0]["direction"], "outbound")
        self.assertRegex(status["uptime"], harness.UPTIME_RE)
        for key in harness.STATUS_KEYS:
            self.assertIn(key, status)

    def test_ping_an_address_connects_first(self):
        data1, _, _ = self.start_peer("one")
        _, id2, address2 = self.start_peer("two")
        result = self.cli("ping", address2, "-n", "1", "-data", data1)
        self.assertEqual(result.rc, 0, result)
        self.assertRegex(result.out, r"(?m)^PONG from %s: time=" % id2)
        self.assertIn("1 ping, 1 ok", result.out)
        self.assertEqual([p["peer_id"] for p in self.peers_json(data1)], [id2])

    def test_ping_of_a_peer_that_is_not_connected_fails(self):
        data, _, _ = self.start_peer("a")
        stranger = self.other_peer_id()
        result = self.cli("ping", stranger, "-n", "2", "-data", data)
        self.assertEqual(result.rc, 1, result)
        self.assertIn("2 pings, 0 ok", result.out)
        self.assertNotIn("PONG", result.out)
        errors = result.err.strip().splitlines()
        self.assertEqual(len(errors), 2, result)  # one per failed ping
        for line in errors:
            self.assertTrue(line.startswith("error: NOT_FOUND"), result)

    def test_find_of_an_unknown_peer_without_dht_peers_fails(self):
        data, _, _ = self.start_peer("a")
        stranger = self.other_peer_id()
        result = self.cli("find", stranger, "-data", data)
        line = self.assert_one_line_error(result, 1, "UNAVAILABLE", stranger)
        self.assertIn("no DHT peers", line)
        self.assertEqual(result.out, "")

    # ---- errors ----

    def test_connect_with_a_bad_multiaddr_is_a_usage_error(self):
        data, _, address = self.start_peer("a")
        for bad in ("/ip4/1.2.3/tcp/1/p2p/" + address.rsplit("/", 1)[1],
                    strip_p2p(address),
                    "not-a-multiaddr"):
            result = self.cli("connect", bad, "-data", data)
            self.assert_usage_error(result, bad)
            self.assertEqual(result.out, "")
        self.assertEqual(self.peers_json(data), [])
        result = self.cli("connect", "-data", data)
        self.assert_usage_error(result, "MULTIADDR")
        for args, needle in ((["ping", "nobody"], "nobody"), (["ping", "x", "-n", "0"], "-n"),
                             (["find", "nobody"], "nobody")):
            self.assert_usage_error(self.cli(*(args + ["-data", data])), needle)

    def test_connect_to_the_wrong_peer_id_fails(self):
        data1, _, _ = self.start_peer("one")
        _, id2, address2 = self.start_peer("two")
        stranger = self.other_peer_id()
        wrong = strip_p2p(address2) + "/p2p/" + stranger
        result = self.cli("connect", wrong, "-data", data1)
        line = self.assert_one_line_error(result, 1, stranger)
        self.assertIn(id2, line)  # the message names the peer that answered
        self.assertEqual(result.out, "")
        self.assertNotIn(stranger, [p["peer_id"] for p in self.peers_json(data1)])

    def test_commands_exit_3_when_no_node_runs(self):
        data = self.data_dir()
        stranger = self.other_peer_id()
        commands = (["id"], ["id", "-json"], ["peers"], ["peers", "-json"],
                    ["connect", "/ip4/127.0.0.1/tcp/1/p2p/" + stranger],
                    ["ping", stranger, "-n", "1"], ["find", stranger])
        for args in commands:
            result = self.cli(*(args + ["-data", data]))
            self.assert_one_line_error(result, 3, "node is not running")
            self.assertEqual(result.out, "")
        self.assertFalse(os.path.exists(data), "a command created the data directory")
        # A data directory whose node has stopped: the same.
        data, _, _ = self.start_peer("stopped")
        self.stop_node(data)
        for args in commands:
            self.assert_one_line_error(self.cli(*(args + ["-data", data])), 3,
                                       "node is not running")

    # ---- stop ----

    def test_stop_goes_through_shutdown(self):
        data, _, _ = self.start_peer("a")
        pid = self.read_pid_file(data)
        result = self.stop_node(data, timeout=10)
        self.assertEqual(result.out, "Stopping node (PID %d)...\nNode stopped\n" % pid)
        self.assert_node_gone(data, pid)
        self.assertFalse(os.path.exists(os.path.join(data, "api.sock")), "api.sock left behind")
        # The node says why it stopped: the Shutdown call, not a signal.
        log = harness.read_text(self.log_file(data))
        self.assertIn("Shutdown", log)
        self.assertNotIn("SIGTERM", log)
        result = self.cli("stop", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertIn("node is not running", result.out)

    def test_restart_stops_through_shutdown(self):
        data, node_id, _ = self.start_peer("a")
        pid = self.read_pid_file(data)
        result = self.cli("restart", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertIn("Node stopped\n", result.out)
        self.assertIn("Node started\n", result.out)
        self.assertFalse(process_alive(pid), "the old node survived restart")
        new_pid = self.read_pid_file(data)
        self.assertNotEqual(new_pid, pid)
        result = self.cli("id", "-data", data)
        self.assertEqual((result.rc, result.out), (0, node_id + "\n"), result)
        self.assertNotIn("SIGTERM", harness.read_text(self.log_file(data)))

    def test_unresponsive_node_status_falls_back_and_stop_kills_it(self):
        data, node_id, _ = self.start_peer("a")
        pid = self.read_pid_file(data)
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: harness.process_state(pid) == "T", 5, message="node to be stopped")

        # status: the API does not answer within its short deadline; node.status is shown.
        result = self.cli("status", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertRegex(result.out, r"(?m)^Status:\s+running$")
        self.assertIn(node_id, result.out)
        warning = result.err.strip().splitlines()
        self.assertEqual(len(warning), 1, result)
        self.assertIn("node.status", warning[0])

        # stop: Shutdown times out, then SIGTERM (the stopped node cannot act on it), then
        # SIGKILL after the short -timeout.
        result = self.cli("stop", "-data", data, "-timeout", "1", timeout=30)
        self.assertEqual(result.rc, 0, result)
        self.assertIn("DEADLINE_EXCEEDED", result.out)
        self.assertIn("SIGTERM", result.out)
        self.assertIn("Node killed", result.out)
        self.assertFalse(process_alive(pid), "the node survived stop")
        self.assert_node_gone(data, pid)


if __name__ == "__main__":
    unittest.main()
