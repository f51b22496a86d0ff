"""Peer-to-peer behaviour of real nodes on 127.0.0.1: bootstrap dialing, the peer list in the
status, identity checks, reconnection with backoff, and a hub with many inbound peers.

The nodes speak libp2p (TCP, multistream-select, Noise, yamux, identify, ping). `start -bootstrap
ADDR/p2p/ID` makes a node dial ADDR, check that the remote is ID, and redial with exponential
backoff (1 s doubling to 60 s, with jitter) while disconnected. The node rewrites node.status
whenever a peer connects, finishes identify, or disconnects.

Every wait below is bounded; the bounds are generous and only keep a broken node from hanging
the run. Every node is stopped by the harness's cleanup, even when a test fails.
"""

import os
import re
import subprocess
import time
import unittest

import harness
from harness import (LOOPBACK_ANY_PORT, PEER_ID_RE, free_port, port_of, process_alive,
                     wait_until)

AGENT_VERSION = "agentnetwork/0.1.0"

# Generous bounds for what should take well under a second on an idle machine.
CONNECT_TIMEOUT = 10.0
DISCONNECT_TIMEOUT = 5.0
# The redialer backs off 1 s, 2 s, 4 s, 8 s (+ up to 20 % jitter) while the peer is away.
RECONNECT_TIMEOUT = 15.0
HUB_PEERS = 20
HUB_TIMEOUT = 30.0
# A stop of an idle node must come well under the CLI's default 10 s timeout.
PROMPT_STOP = 5.0


def strip_p2p(multiaddr):
    """/ip4/H/tcp/P/p2p/ID -> /ip4/H/tcp/P"""
    return re.sub(r"/p2p/[^/]+$", "", multiaddr)


class NetworkTestCase(harness.NodeTestCase):
    """Helpers for nodes that talk to each other."""

    def start_peer(self, name, bootstrap=None, listen=LOOPBACK_ANY_PORT, dht_mode=None):
        """Starts a node in <tmp>/<name>; returns (data dir, node ID, its dialable address)."""
        data = self.data_dir(name)
        extra = ["-bootstrap", bootstrap] if bootstrap else []
        if dht_mode:
            extra += ["-dht-mode", dht_mode]
        _, status = self.start_node(data, listen=listen, extra=extra)
        node_id = status["node_id"]
        self.assertRegex(node_id, PEER_ID_RE)
        self.assertEqual(len(status["listen_addrs"]), 1, status)
        address = status["listen_addrs"][0]
        self.assertTrue(address.startswith("/ip4/127.0.0.1/tcp/"), address)
        self.assertTrue(address.endswith("/p2p/" + node_id), address)
        return data, node_id, address

    def status(self, data):
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0, "the node of %s is not running: %r" % (data, status))
        self.assertIsInstance(status.get("peer_count"), int, status)
        self.assertIsInstance(status.get("peers"), list, status)
        return status

    def wait_status(self, data, predicate, timeout, what):
        """Polls `status -json` until predicate(status) holds; returns that status."""
        last = {}

        def check():
            last["status"] = self.status(data)
            return predicate(last["status"])

        wait_until(check, timeout, interval=0.1,
                   message=lambda: "%s (last status of %s: peer_count=%s peers=%s)" % (
                       what, os.path.basename(data), last.get("status", {}).get("peer_count"),
                       last.get("status", {}).get("peers")))
        return last["status"]

    def wait_peers(self, data, expected_ids, timeout=CONNECT_TIMEOUT, identified=True):
        """Waits until the node's peer list is exactly expected_ids (and, if identified, every
        entry carries the agent version learnt through identify); returns the status."""
        expected_ids = sorted(expected_ids)

        def done(status):
            ids = sorted(p.get("peer_id") for p in status["peers"])
            if ids != expected_ids or status["peer_count"] != len(expected_ids):
                return False
            return not identified or all(p.get("agent_version") for p in status["peers"])

        return self.wait_status(data, done, timeout,
                                "%s to have exactly %d peer(s)%s" % (
                                    os.path.basename(data), len(expected_ids),
                                    " (identified)" if identified else ""))

    def hold_no_peers(self, data, seconds):
        """Asserts that the node reports no peer for `seconds` (polled)."""
        deadline = time.monotonic() + seconds
        polls = 0
        while time.monotonic() < deadline or polls == 0:
            status = self.status(data)
            self.assertEqual(status["peer_count"], 0, status)
            self.assertEqual(status["peers"], [], status)
            polls += 1
            time.sleep(0.2)

    def peer_entry(self, status, peer_id):
        entries = [p for p in status["peers"] if p.get("peer_id") == peer_id]
        self.assertEqual(len(entries), 1, "expected one entry for %s in %s" % (
            peer_id, status["peers"]))
        return entries[0]

    def log_text(self, data, lines=500):
        result = self.cli("logs", "-data", data, "-n", str(lines))
        self.assertEqual(result.rc, 0, result)
        return result.out

    def wait_retry_warnings(self, data, address_part, count, timeout):
        """Waits for `count` warnings about failed bootstrap dials to an address containing
        address_part, each announcing a retry; returns those log lines."""
        def found():
            lines = [line for line in self.log_text(data).splitlines()
                     if "retrying" in line and address_part in line]
            return lines if len(lines) >= count else None

        lines = wait_until(found, timeout, interval=0.2,
                           message=lambda: "%d retry warnings about %s in the log of %s:\n%s" % (
                               count, address_part, data, self.log_text(data, 30)))
        delays = []
        for line in lines:
            self.assertRegex(line, r"\[warn(ing)?\]", line)
            self.assertIn("bootstrap peer", line)
            match = re.search(r"retrying in (\d+) ms", line)
            self.assertTrue(match, line)
            delays.append(int(match.group(1)))
        # Exponential backoff: 1 s, then doubling (the jitter is added to the wait, not logged).
        expected = [min(1000 * 2 ** i, 60000) for i in range(len(delays))]
        self.assertEqual(delays, expected, "\n".join(lines))
        return lines

    def foreign_peer_id(self, name):
        """A valid peer ID of a key no running node uses (`keygen` in a spare data dir)."""
        spare = os.path.join(self.tmp, name)
        result = self.cli("keygen", "-data", spare)
        self.assertEqual(result.rc, 0, result)
        match = re.search(r"^Node ID:\s+(\S+)$", result.out, re.M)
        self.assertTrue(match, result)
        self.assertRegex(match.group(1), PEER_ID_RE)
        return match.group(1)

    def assert_prompt_stop(self, data):
        """`stop` with the default 10 s timeout ends the node gracefully and promptly."""
        pid = self.read_pid_file(data)
        result = self.cli("stop", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertIn("Node stopped", result.out, result)
        self.assertNotIn("killed", result.text.lower(), result)
        self.assertLess(result.elapsed, PROMPT_STOP, result)
        self.assert_node_gone(data, pid)
        return result


class TwoNodesTest(NetworkTestCase):

    def test_bootstrap_connects_both_sides(self):
        a, a_id, a_addr = self.start_peer("a")
        b, b_id, b_addr = self.start_peer("b", bootstrap=a_addr)
        self.assertNotEqual(a_id, b_id)

        a_status = self.wait_peers(a, [b_id])
        b_status = self.wait_peers(b, [a_id])

        # A sees B as an inbound peer from a loopback port; identify gave the agent version.
        on_a = self.peer_entry(a_status, b_id)
        self.assertEqual(on_a["direction"], "inbound", a_status)
        self.assertEqual(on_a["agent_version"], AGENT_VERSION, a_status)
        self.assertRegex(on_a["address"], r"^/ip4/127\.0\.0\.1/tcp/[1-9]\d*$", a_status)

        # B dialled A at the bootstrap address.
        on_b = self.peer_entry(b_status, a_id)
        self.assertEqual(on_b["direction"], "outbound", b_status)
        self.assertEqual(on_b["agent_version"], AGENT_VERSION, b_status)
        self.assertEqual(on_b["address"], strip_p2p(a_addr), b_status)

        # The text status counts the peer too.
        for data in (a, b):
            text = self.cli("status", "-data", data)
            self.assertEqual(text.rc, 0, text)
            self.assertIn("Peers:       1", text.out.splitlines(), text)

        # The bootstrap connection is logged on B.
        self.assertIn("peer connected: %s" % a_id, self.log_text(b))

        # Both nodes still stop cleanly with a live connection.
        self.assert_prompt_stop(b)
        self.wait_peers(a, [], timeout=DISCONNECT_TIMEOUT, identified=False)
        self.assert_prompt_stop(a)


class ThreeNodesTest(NetworkTestCase):

    def test_star_and_disconnect(self):
        # B and C are DHT clients: the hub does not tell one of the other through the DHT
        # (test_dht.py covers that), but both advertise and look up the DAAN network's namespace
        # (/daan/1.0.0) at the hub, so they may find and dial each other; that is the Go node's
        # behaviour, and what follows holds either way.
        a, a_id, a_addr = self.start_peer("a")
        b, b_id, _ = self.start_peer("b", bootstrap=a_addr, dht_mode="client")
        c, c_id, _ = self.start_peer("c", bootstrap=a_addr, dht_mode="client")

        a_status = self.wait_peers(a, [b_id, c_id])
        for peer_id in (b_id, c_id):
            entry = self.peer_entry(a_status, peer_id)
            self.assertEqual(entry["direction"], "inbound", a_status)
            self.assertEqual(entry["agent_version"], AGENT_VERSION, a_status)
        for data in (b, c):
            status = self.wait_status(
                data, lambda s: any(p.get("peer_id") == a_id for p in s["peers"]),
                CONNECT_TIMEOUT, "%s connected to the hub" % os.path.basename(data))
            self.assertEqual(self.peer_entry(status, a_id)["direction"], "outbound", status)

        # B leaves: A's status file is rewritten on the disconnect, not only by the 10 s timer.
        self.assert_prompt_stop(b)
        a_status = self.wait_peers(a, [c_id], timeout=DISCONNECT_TIMEOUT, identified=False)
        self.assertEqual(a_status["peer_count"], 1, a_status)

        # C kept its connection to the hub (and lost B's, if it had one).
        c_status = self.wait_peers(c, [a_id], timeout=DISCONNECT_TIMEOUT, identified=False)
        self.assertEqual(c_status["peer_count"], 1, c_status)
        a_status = self.status(a)
        self.assertEqual(self.peer_entry(a_status, c_id)["direction"], "inbound", a_status)


class WrongPeerIdTest(NetworkTestCase):

    def test_bootstrap_with_wrong_peer_id_is_refused(self):
        a, a_id, a_addr = self.start_peer("a")
        wrong_id = self.foreign_peer_id("other-key")
        self.assertNotEqual(wrong_id, a_id)
        bogus = strip_p2p(a_addr) + "/p2p/" + wrong_id

        b, b_id, _ = self.start_peer("b", bootstrap=bogus)
        b_pid = self.read_pid_file(b)

        # The handshake fails on B's side, so neither node reports a peer.
        self.hold_no_peers(b, 3.0)
        self.assertEqual(self.status(a)["peer_count"], 0)

        # B says why, naming the ID it expected and the one it met.
        def mismatch_line():
            lines = [line for line in self.log_text(b).splitlines()
                     if "mismatch" in line.lower()]
            return [line for line in lines if wrong_id in line and a_id in line]

        lines = wait_until(mismatch_line, CONNECT_TIMEOUT, interval=0.2,
                           message=lambda: "a log line of B with 'mismatch', %s and %s:\n%s" % (
                               wrong_id, a_id, self.log_text(b, 30)))
        self.assertTrue(lines)

        # B keeps running (and A too), still without peers.
        self.assertTrue(process_alive(b_pid))
        self.assertEqual(self.read_pid_file(b), b_pid)
        status = self.status(b)
        self.assertIs(status["running"], True, status)
        self.assertEqual(status["peer_count"], 0, status)
        self.assertEqual(self.status(a)["peer_count"], 0)
        self.assert_prompt_stop(b)


class ReconnectTest(NetworkTestCase):

    def test_redials_bootstrap_peer_after_restart(self):
        a, a_id, a_addr = self.start_peer("a")
        a_port = port_of(a_addr)
        b, b_id, _ = self.start_peer("b", bootstrap=a_addr)
        self.wait_peers(a, [b_id])
        self.wait_peers(b, [a_id])

        # A goes away: B notices, and redials in vain (at once, then after ~1 s, ~2 s, ...).
        self.assert_prompt_stop(a)
        self.wait_peers(b, [], timeout=DISCONNECT_TIMEOUT, identified=False)
        self.wait_retry_warnings(b, "/tcp/%d" % a_port, 3, RECONNECT_TIMEOUT)
        self.assertEqual(self.status(b)["peer_count"], 0)

        # A comes back with the same key on the same port; B redials by itself.
        _, again_id, again_addr = self.start_peer(
            "a", listen="/ip4/127.0.0.1/tcp/%d" % a_port)
        self.assertEqual(again_id, a_id)
        self.assertEqual(again_addr, a_addr)
        b_status = self.wait_peers(b, [a_id], timeout=RECONNECT_TIMEOUT)
        entry = self.peer_entry(b_status, a_id)
        self.assertEqual(entry["direction"], "outbound", b_status)
        self.assertEqual(entry["agent_version"], AGENT_VERSION, b_status)
        a_status = self.wait_peers(a, [b_id])
        self.assertEqual(self.peer_entry(a_status, b_id)["direction"], "inbound", a_status)
        self.assertIn("peer connected: %s" % a_id, self.log_text(b).split("retrying")[-1])


class UnreachableBootstrapTest(NetworkTestCase):

    def test_closed_port_does_not_block(self):
        closed_port = free_port()  # bound and released: nothing listens there
        absent_id = self.foreign_peer_id("absent-key")
        address = "/ip4/127.0.0.1/tcp/%d/p2p/%s" % (closed_port, absent_id)

        b, _, _ = self.start_peer("b", bootstrap=address)
        b_pid = self.read_pid_file(b)

        # It retries, with a warning per failed dial (immediately, then after ~1 s).
        self.wait_retry_warnings(b, "/tcp/%d" % closed_port, 2, CONNECT_TIMEOUT)
        self.assertTrue(process_alive(b_pid))
        status = self.status(b)
        self.assertEqual(status["peer_count"], 0, status)
        self.assertEqual(status["peers"], [], status)

        # The pending redial does not hold up the stop.
        self.assert_prompt_stop(b)


class HubTest(NetworkTestCase):

    def test_hub_with_many_inbound_peers(self):
        hub, hub_id, hub_addr = self.start_peer("hub")
        spokes = [self.data_dir("spoke%02d" % i) for i in range(HUB_PEERS)]

        # Start the spokes concurrently; every `start` must end, and succeed, in bounded time.
        # DHT clients out of the DAAN network: the spokes do not learn of each other through
        # the hub, neither by the DHT nor by the DAAN network's namespace.
        starters = [self.spawn_binary(["start", "-data", d, "-listen", LOOPBACK_ANY_PORT,
                                       "-bootstrap", hub_addr, "-dht-mode", "client",
                                       "-daan-network", "off"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for d in spokes]
        deadline = time.monotonic() + harness.CLI_TIMEOUT
        for data, proc in zip(spokes, starters):
            try:
                out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.fail("start -data %s did not finish within %ss" % (data,
                                                                         harness.CLI_TIMEOUT))
            self.assertEqual(proc.returncode, 0, "start -data %s: %r %r" % (data, out, err))
        spoke_ids = [self.status(d)["node_id"] for d in spokes]
        self.assertEqual(len(set(spoke_ids + [hub_id])), HUB_PEERS + 1)

        hub_status = self.wait_peers(hub, spoke_ids, timeout=HUB_TIMEOUT)
        self.assertEqual(hub_status["peer_count"], HUB_PEERS, hub_status)
        for entry in hub_status["peers"]:
            self.assertEqual(entry["direction"], "inbound", entry)
            self.assertEqual(entry["agent_version"], AGENT_VERSION, entry)
        for data in spokes:
            status = self.wait_peers(data, [hub_id])
            self.assertEqual(status["peers"][0]["direction"], "outbound", status)

        # Stop all spokes concurrently; every stop is graceful and the hub ends with no peers.
        stoppers = [self.spawn_binary(["stop", "-data", d],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                    for d in spokes]
        deadline = time.monotonic() + harness.CLI_TIMEOUT
        for data, proc in zip(spokes, stoppers):
            try:
                out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.fail("stop -data %s did not finish within %ss" % (data,
                                                                        harness.CLI_TIMEOUT))
            self.assertEqual(proc.returncode, 0, "stop -data %s: %r %r" % (data, out, err))
            self.assertIn(b"Node stopped", out, "stop -data %s: %r %r" % (data, out, err))
        self.wait_peers(hub, [], timeout=HUB_TIMEOUT, identified=False)
        self.assertTrue(process_alive(self.read_pid_file(hub)))
        self.assert_prompt_stop(hub)


if __name__ == "__main__":
    unittest.main()
