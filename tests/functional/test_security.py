"""Security protocols and muxers chosen with -security and -muxer on real nodes (issue "interop
matrix"): TLS with mplex between two nodes, a default node accepting a TLS-only dialer, the
documented refusal the other way round, and the warning when plaintext is enabled.

Every wait is bounded; every node is stopped by the harness's cleanup, even when a test fails.
"""

import unittest

import harness
from harness import wait_until

CONNECT_TIMEOUT = 15.0


class SecurityTest(harness.NodeTestCase):

    def start_peer(self, name, extra=()):
        data = self.data_dir(name)
        _, status = self.start_node(data, extra=list(extra))
        address = status["listen_addrs"][0]
        if "/p2p/" not in address:
            address += "/p2p/" + status["node_id"]
        return data, status["node_id"], address

    def peer_ids(self, data):
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0, status)
        return [peer.get("peer_id") for peer in status.get("peers", [])]

    def test_tls_and_mplex_between_two_nodes(self):
        a, a_id, a_addr = self.start_peer("a", ["-security", "tls", "-muxer", "mplex"])
        b, b_id, _ = self.start_peer("b", ["-security", "tls", "-muxer", "mplex"])
        result = self.cli("connect", "-data", b, a_addr, timeout=CONNECT_TIMEOUT + 5)
        self.assertEqual(result.rc, 0, result)
        result = self.cli("ping", "-data", b, a_id, "-n", "3", timeout=CONNECT_TIMEOUT + 5)
        self.assertEqual(result.rc, 0, result)
        wait_until(lambda: b_id in self.peer_ids(a), CONNECT_TIMEOUT,
                   message="A lists B as a peer")

    def test_default_node_accepts_a_tls_only_dialer_and_dials_with_noise(self):
        default, _, default_addr = self.start_peer("default")
        tls_only, tls_id, _ = self.start_peer("tls", ["-security", "tls"])
        # The TLS-only node dials the default one (noise,tls): TLS is accepted inbound.
        result = self.cli("connect", "-data", tls_only, default_addr, timeout=CONNECT_TIMEOUT + 5)
        self.assertEqual(result.rc, 0, result)
        wait_until(lambda: tls_id in self.peer_ids(default), CONNECT_TIMEOUT,
                   message="the default node lists the TLS-only peer")
        self.cli("stop", "-data", tls_only)
        # The other way round the default node proposes Noise alone (documented): refused.
        _, _, tls_addr2 = self.start_peer("tls2", ["-security", "tls"])
        result = self.cli("connect", "-data", default, tls_addr2, timeout=CONNECT_TIMEOUT + 5)
        self.assertNotEqual(result.rc, 0, result)
        self.assertIn("security negotiation", result.err, result)

    def test_plaintext_start_warns(self):
        data = self.data_dir("plain")
        result, _ = self.start_node(data, extra=["-security", "noise,plaintext"])
        self.assertIn("WARNING", result.err, result)
        self.assertIn("NOT encrypted", result.err, result)
        with open(self.log_file(data)) as log:
            self.assertIn("INSECURE", log.read())

    def test_unknown_protocol_names_are_usage_errors(self):
        data = self.data_dir("bad")
        self.assert_usage_error(self.cli("start", "-data", data, "-security", "ssl"), "ssl")
        self.assert_usage_error(self.cli("start", "-data", data, "-muxer", "spdy"), "spdy")


if __name__ == "__main__":
    unittest.main()
