"""The connection manager in a real node: above -conn-high-water peers, the node trims down to
-conn-low-water, closing unprotected peers that are out of their grace period; its bootstrap
peers are protected and stay connected.

Other nodes connect to the hub with `agentnetwork connect` (inbound for the hub), so that no
redialer reconnects them after a trim. Every wait is bounded; the harness stops every node.
"""

import os
import unittest

import harness
from harness import LOOPBACK_ANY_PORT, wait_until

TIMEOUT = 15.0


class ConnectionManagerTest(harness.NodeTestCase):
    def start(self, name, extra=()):
        # Out of the DAAN network: a trimmed peer would otherwise find the hub again through
        # /daan/1.0.0 and redial it, which is the Go node's behaviour but not what is tested here.
        data = self.data_dir(name)
        _, status = self.start_node(data, listen=LOOPBACK_ANY_PORT,
                                    extra=list(extra) + ["-daan-network", "off"])
        return data, status["node_id"], status["listen_addrs"][0]

    def peer_ids(self, data):
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0, status)
        return [peer["peer_id"] for peer in status.get("peers", [])]

    def test_a_hub_over_its_high_water_mark_trims_to_its_low_water_mark_keeping_bootstrap(self):
        protected_data, protected_id, protected_address = self.start("protected")
        hub, hub_id, hub_address = self.start(
            "hub", ["-bootstrap", protected_address, "-conn-low-water", "2",
                    "-conn-high-water", "3", "-conn-grace", "0"])
        wait_until(lambda: protected_id in self.peer_ids(hub), TIMEOUT,
                   message="the hub's bootstrap connection")
        rc, status = self.status_json(hub)
        self.assertEqual(status["peer_count"], 1, status)

        others = [self.start("peer%d" % i) for i in range(3)]
        for data, _, _ in others:
            result = self.cli("connect", "-data", data, hub_address)
            self.assertEqual(result.rc, 0, result)
        # The third inbound peer makes four > 3: the hub trims to two, keeping its bootstrap
        # peer, which is protected.
        wait_until(lambda: len(self.peer_ids(hub)) <= 2, TIMEOUT,
                   message="the hub trimming to its low-water mark")
        peers = self.peer_ids(hub)
        self.assertIn(protected_id, peers)
        self.assertEqual(len(peers), 2, peers)
        log = harness.read_text(self.log_file(hub))
        self.assertIn("4 peers connected, over the high-water mark of 3: closing 2 connections",
                      log)
        # The trimmed peers see the connection closed.
        trimmed = [data for data, node_id, _ in others if node_id not in peers]
        self.assertEqual(len(trimmed), 2)
        for data in trimmed:
            wait_until(lambda: hub_id not in self.peer_ids(data), TIMEOUT,
                       message="a trimmed peer seeing the close")
        # Up to the high-water mark again: nobody is trimmed.
        late_data, late_id, _ = self.start("late")
        result = self.cli("connect", "-data", late_data, hub_address)
        self.assertEqual(result.rc, 0, result)
        wait_until(lambda: late_id in self.peer_ids(hub), TIMEOUT, message="the late peer")
        self.assertEqual(len(self.peer_ids(hub)), 3)

    def test_bad_connection_limits_are_refused_before_anything_starts(self):
        data = self.data_dir("bad")
        for extra, needle in (
                (["-conn-low-water", "0"], '"0"'),
                (["-conn-high-water", "lots"], '"lots"'),
                (["-conn-grace", "-1"], '"-1"'),
                (["-conn-low-water", "50", "-conn-high-water", "10"], "above -conn-high-water")):
            result = self.cli("start", "-data", data, "-listen", LOOPBACK_ANY_PORT, *extra)
            self.assertNotEqual(result.rc, 0, result)
            self.assertIn(needle, result.err, result)
            self.assertFalse(os.path.exists(self.pid_file(data)))


if __name__ == "__main__":
    unittest.main()
