"""Hostile peers against a real node (issue 16): real js-libp2p peers (hostile_peer.mjs) attack an
`agentnetwork` node while an honest js peer pings it every 200 ms.

Every test starts its own node (127.0.0.1, a temporary data directory), connects the honest peer
(from 127.0.0.1; each attacking process dials from an address of its own, 127.0.0.10 and up),
measures the node's resident memory (VmRSS) as the baseline, runs one attack, waits until the
attackers' connections are gone and the node has settled, and checks:
  - every honest ping during the attack was answered (HONEST_PING_FAILURES_ALLOWED), p99
    within HONEST_PING_P99_BOUND_MS;
  - the node's RSS over the baseline stays within the bound of that attack;
  - what is particular to the attack (e.g. stalled handshakes closed in time).
Each test prints one `RESULT {json}` line on stderr with what it measured.

Run: bash tests/hostile/run.sh [TestClass[.test]] (AGENTNETWORK_BIN names the binary), or
`ctest -R hostile` in a build directory.
"""

import json
import os
import sys
import time
import unittest

import hostile_support as hs
from hostile_support import MIB, KIB, HonestPeer, JsPeer, harness, mib, run_js, run_js_split

# ---- bounds: issue 16's targets, and ours where the issue names none ----

# Issue 16: "1,000 ordinary sybil identities followed by 300 with maximal identify answers raise
# RSS by at most 48 MiB in all".
SYBIL_RSS_BOUND = 48 * MIB
# Issue 16: "... and a second round adds nothing that stays". Nothing, up to the allocator's
# noise: 4 MiB. An unbounded peer store adds ~100 MiB in a round (300 x ~400 KB alone).
SECOND_ROUND_SLACK = 4 * MIB
# Issue 16: "400 stalled handshakes from one address are closed by the node within 75 s while an
# honest peer from another address connects and pings".
STALLED_HANDSHAKES = 400
STALLED_CLOSE_WITHIN_S = 75.0
# Issue 16: "memory per idle authenticated connection stays <= 64 KiB".
IDLE_CONNECTION_BOUND = 64 * KIB
# Attacks that leave nothing the node should keep (stalled handshakes, a stream flood whose peer
# has left): once their connections are closed, RSS may stay above the baseline only by what the
# allocator keeps of the freed memory; 8 MiB.
NOTHING_STAYS_BOUND = 8 * MIB
# Oversized identify: 100 identities with answers over every limit (or at them). The issue's
# budget is 48 MiB for 300 maximal answers, so one third of it for 100.
OVERSIZED_IDENTITIES = 100
OVERSIZED_RSS_BOUND = 16 * MIB
# DHT record flood: more provider records and /pk records than the node's stores hold (64 Ki
# providers, 16 Ki records, src/p2p/kad/records.h), from 4 peers. What a flood can make the node
# hold is hostile state like a sybil's, so the same 48 MiB budget as for the sybils.
DHT_FLOOD_PEERS = 4
DHT_FLOOD_PROVIDERS = 66000
DHT_FLOOD_RECORDS = 17000
DHT_FLOOD_QUERIES = 3000
DHT_FLOOD_RSS_BOUND = 48 * MIB
# Then, with the stores full, 500 more provider records from a fresh peer: refusing one must
# cost the node about what storing one does (0.15 ms of CPU measured while filling), not a scan
# of the whole store; 1 ms each leaves room for a busy machine.
DHT_PAST_CAPS_PROVIDERS = 500
DHT_PAST_CAPS_CPU_PER_REQUEST_S = 0.001
# The honest peer: a ping every 200 ms, each given 5 s. Every one must be answered: none of these
# attacks may cost an established honest connection its pings.
HONEST_INTERVAL_MS = 200
HONEST_PING_TIMEOUT_MS = 5000
HONEST_PING_FAILURES_ALLOWED = 0
# ... and answered in time: a ping slower than 1 s on loopback means the attacker held the
# node's network thread (a quiet node answers in well under 1 ms, and under these attacks on a
# busy 2-core machine p99 stays under 200 ms when the thread is not held).
HONEST_PING_P99_BOUND_MS = 1000
# A fresh honest connection (TCP, Noise, yamux, a ping) must be up within 10 s: less than the
# node's 15 s upgrade timeout, so a dial that only got in because a stalled handshake timed out
# does not count.
FRESH_DIAL_TIMEOUT_MS = 10000

SETTLE_S = 3.0          # after the attackers' connections are closed, before reading RSS
CLOSE_WAIT_S = 60.0     # for the attackers' connections to be gone


class HostileTestCase(harness.NodeTestCase):
    """A node and its honest peer; the baseline RSS; helpers to settle and to check."""

    honest_fresh_every_ms = None

    def setUp(self):
        super().setUp()
        why = hs.js_ready()
        if why:
            self.fail(why)
        self.data = self.data_dir("node")
        _, status = self.start_node(self.data)
        self.pid = self.read_pid_file(self.data)
        address = status["listen_addrs"][0]
        if "/p2p/" not in address:
            address += "/p2p/" + status["node_id"]
        self.target = address
        self.port = harness.port_of(address)
        self.honest = HonestPeer(self.target, interval_ms=HONEST_INTERVAL_MS,
                                 ping_timeout_ms=HONEST_PING_TIMEOUT_MS,
                                 fresh_every_ms=self.honest_fresh_every_ms,
                                 fresh_timeout_ms=FRESH_DIAL_TIMEOUT_MS, max_seconds=600)
        self.addCleanup(self.honest.kill)
        self._js = []
        self.addCleanup(self._kill_js)
        time.sleep(2.0)  # identify both ways, the first pings
        self.base_sockets = hs.tcp_connections_of(self.pid)
        self.baseline = self.settled_rss(wait_for_close=False)
        self.started = time.time()
        self.result = {"test": self.id().split(".", 1)[1], "baseline_rss": self.baseline}

    def _kill_js(self):
        for peer in self._js:
            peer.kill()

    def js(self, mode, *args):
        peer = JsPeer(mode, self.target, *args)
        self._js.append(peer)
        return peer

    def rss(self):
        return hs.rss_bytes(self.pid)

    def settled_rss(self, wait_for_close=True):
        """RSS once the attackers' sockets are closed (back to the baseline's count) and SETTLE_S
        has passed: the median of three readings a second apart."""
        if wait_for_close:
            harness.wait_until(lambda: hs.tcp_connections_of(self.pid) <= self.base_sockets,
                               CLOSE_WAIT_S, 0.2,
                               message=lambda: "the node to close the attackers' connections "
                                               "(%d sockets, %d before)" % (
                                                   hs.tcp_connections_of(self.pid),
                                                   self.base_sockets))
            time.sleep(SETTLE_S)
        readings = []
        for i in range(3):
            if i:
                time.sleep(1.0)
            readings.append(self.rss())
        return hs.median(readings)

    def check_honest(self, since, until):
        """Every honest ping that started in [since, until] was answered."""
        self.assertTrue(harness.process_alive(self.pid), "the node died")
        pings = self.honest.results("ping", since, until)
        summary = HonestPeer.summary(pings)
        self.result["honest_pings"] = summary
        self.assertGreater(summary["count"], 0, "no honest ping at all during the attack")
        self.assertLessEqual(summary["failed"], HONEST_PING_FAILURES_ALLOWED,
                             "honest pings failed during the attack: %s" % summary)
        self.assertLessEqual(summary["p99_ms"], HONEST_PING_P99_BOUND_MS,
                             "honest pings were slow during the attack: %s" % summary)
        return summary

    def report(self):
        self.result["seconds"] = round(time.time() - self.started, 1)
        self.result["node_alive"] = harness.process_alive(self.pid)
        sys.stderr.write("RESULT %s\n" % json.dumps(self.result, sort_keys=True))
        sys.stderr.flush()

    def run_checks(self, checks):
        """Runs every (name, callable) check, records which failed, fails with all of them."""
        failures = []
        self.result["checks"] = {}
        for name, check in checks:
            try:
                check()
                self.result["checks"][name] = "pass"
            except AssertionError as e:
                self.result["checks"][name] = "FAIL"
                failures.append("%s: %s" % (name, e))
        self.report()
        if failures:
            self.fail("\n".join(failures))


class SybilTest(HostileTestCase):
    """Issue 16, defect 1: the peer store keeps whatever identify brings, forever."""

    def test_sybils_identify_and_leave(self):
        r = self.result
        rounds = []
        for round_no in (1, 2):
            ordinary = run_js_split("sybils", self.target, 1000, "--concurrency", 6,
                                    timeout=300)
            rss_ordinary = self.settled_rss()
            maximal = run_js_split("sybils", self.target, 300, "--concurrency", 4,
                                   "--maximal", timeout=300)
            rss_round = self.settled_rss()
            rounds.append({"ordinary": ordinary, "maximal": maximal,
                           "rss_after_ordinary": rss_ordinary, "rss_after_round": rss_round})
            hs.log("round %d: ordinary %d/%d in %.0fs, maximal %d/%d (%s bytes each) in %.0fs; "
                   "RSS %s -> %s -> %s" % (
                       round_no, ordinary["ok"], ordinary["count"], ordinary["seconds"],
                       maximal["ok"], maximal["count"], maximal["identify_bytes"],
                       maximal["seconds"], mib(self.baseline if round_no == 1 else
                                               rounds[0]["rss_after_round"]),
                       mib(rss_ordinary), mib(rss_round)))
        until = time.time()
        first, second = rounds
        r["rounds"] = rounds
        r["first_round_growth"] = first["rss_after_round"] - self.baseline
        r["second_round_growth"] = second["rss_after_round"] - first["rss_after_round"]
        r["bytes_per_ordinary_identity"] = round(
            (first["rss_after_ordinary"] - self.baseline) / max(1, first["ordinary"]["ok"]))
        r["bytes_per_maximal_identity"] = round(
            (first["rss_after_round"] - first["rss_after_ordinary"])
            / max(1, first["maximal"]["ok"]))

        def delivered():
            for one in rounds:
                for kind in ("ordinary", "maximal"):
                    s = one[kind]
                    self.assertGreaterEqual(s["ok"], 0.95 * s["count"],
                                            "the attack was not delivered: %s" % s)

        self.run_checks([
            ("honest_pings", lambda: self.check_honest(self.started, until)),
            ("attack_delivered", delivered),
            ("first_round_within_48MiB", lambda: self.assertLessEqual(
                r["first_round_growth"], SYBIL_RSS_BOUND,
                "1,000 + 300 sybils raised RSS by %s (bound %s)" % (
                    mib(r["first_round_growth"]), mib(SYBIL_RSS_BOUND)))),
            ("second_round_adds_nothing", lambda: self.assertLessEqual(
                r["second_round_growth"], SECOND_ROUND_SLACK,
                "the second round added %s (bound %s)" % (
                    mib(r["second_round_growth"]), mib(SECOND_ROUND_SLACK)))),
        ])


class StalledHandshakeTest(HostileTestCase):
    """Issue 16, defect 2: stalled handshakes hold the node's 64 handshake slots for 15 s each."""

    honest_fresh_every_ms = 2000
    SUSTAIN_S = 20.0

    def setUp(self):
        if not hs.loopback_alias_usable("127.0.0.2"):
            self.skipTest("127.0.0.2 is not a local address here")
        super().setUp()

    def test_stalled_handshakes_from_one_address(self):
        r = self.result
        attack = hs.StalledHandshakes(self.port, STALLED_HANDSHAKES, source="127.0.0.2")
        self.addCleanup(attack.stop)
        t_attack = time.time()
        attack.start()
        r["open_seconds"] = round(time.time() - t_attack, 2)
        # Keep 400 stalled handshakes in flight (each one the node closes is opened again a
        # second later) for SUSTAIN_S, then stop replacing them.
        time.sleep(self.SUSTAIN_S)
        attack.stop_sustaining()
        t_sustain_end = time.time()
        deadline = time.monotonic() + STALLED_CLOSE_WITHIN_S + 5
        while attack.still_open() and time.monotonic() < deadline:
            time.sleep(0.5)
        r["still_open"] = attack.still_open()
        r["oldest_open_s"] = round(attack.oldest_open_age(), 1)
        r["opened"] = attack.opened
        r["open_failures"] = attack.open_failures
        r["closed_by_node"] = len(attack.lifetimes)
        r["max_lifetime_s"] = round(max(attack.lifetimes), 2) if attack.lifetimes else None
        r["median_lifetime_s"] = round(hs.median(attack.lifetimes), 2) if attack.lifetimes else None
        attack.stop()
        until = time.time()
        fresh = self.honest.results("fresh", t_attack, t_sustain_end)
        r["fresh_dials"] = HonestPeer.summary(fresh, key="ms")
        r["rss_after"] = self.settled_rss()
        r["rss_growth"] = r["rss_after"] - self.baseline

        def fresh_ok():
            self.assertGreaterEqual(len(fresh), 5, "too few fresh dials during the attack")
            self.assertEqual(r["fresh_dials"]["failed"], 0,
                             "fresh honest connections failed during the attack: %s"
                             % r["fresh_dials"])

        def closed_in_time():
            self.assertEqual(r["still_open"], 0, "stalled handshakes still open %.0f s after "
                             "the last was opened" % (STALLED_CLOSE_WITHIN_S + 5))
            self.assertLessEqual(r["max_lifetime_s"] or 0, STALLED_CLOSE_WITHIN_S)

        self.run_checks([
            ("honest_pings", lambda: self.check_honest(t_attack, until)),
            ("honest_connects_during_attack", fresh_ok),
            ("stalled_closed_within_75s", closed_in_time),
            ("rss_nothing_stays", lambda: self.assertLessEqual(
                r["rss_growth"], NOTHING_STAYS_BOUND, "RSS grew by %s" % mib(r["rss_growth"]))),
        ])


class StreamFloodTest(HostileTestCase):
    """10,000 streams from one peer, up to 1,000 held open at once (earlier attack, kept)."""

    def test_stream_flood_from_one_peer(self):
        r = self.result
        flood = self.js("streams", "--streams", 10000, "--hold", 1000)
        summary = flood.next(180, lambda o: o.get("kind") == "flooded", "the flood's end")
        time.sleep(2.0)
        r["flood"] = summary
        r["rss_under_flood"] = self.rss()
        r["fds_under_flood"] = hs.fd_count(self.pid)
        flood.finish()
        until = time.time()
        r["rss_after"] = self.settled_rss()
        r["rss_growth"] = r["rss_after"] - self.baseline
        r["rss_growth_under_flood"] = r["rss_under_flood"] - self.baseline
        self.run_checks([
            ("honest_pings", lambda: self.check_honest(self.started, until)),
            ("attack_delivered", lambda: self.assertEqual(summary["opened"], 10000, summary)),
            ("rss_nothing_stays", lambda: self.assertLessEqual(
                r["rss_growth"], NOTHING_STAYS_BOUND, "RSS grew by %s" % mib(r["rss_growth"]))),
        ])


class OversizedIdentifyTest(HostileTestCase):
    """Identify answers over every limit: too large, too many messages, thousands of addresses
    and protocols, identify pushes of the same."""

    def test_oversized_identify(self):
        r = self.result
        summary = run_js_split("oversized", self.target, OVERSIZED_IDENTITIES,
                               "--concurrency", 4, timeout=240)
        until = time.time()
        r["attack"] = summary
        r["rss_after"] = self.settled_rss()
        r["rss_growth"] = r["rss_after"] - self.baseline
        self.run_checks([
            ("honest_pings", lambda: self.check_honest(self.started, until)),
            ("attack_delivered", lambda: self.assertGreaterEqual(
                summary["ok"], 0.95 * OVERSIZED_IDENTITIES, summary)),
            ("rss_within_16MiB", lambda: self.assertLessEqual(
                r["rss_growth"], OVERSIZED_RSS_BOUND,
                "RSS grew by %s (bound %s)" % (mib(r["rss_growth"]), mib(OVERSIZED_RSS_BOUND)))),
        ])


class DhtFloodTest(HostileTestCase):
    """A DHT record flood: provider records, /pk records and queries, beyond the stores' caps;
    then more provider records against the full store."""

    def test_dht_record_flood(self):
        r = self.result
        summary = run_js("dht", self.target, "--peers", DHT_FLOOD_PEERS,
                         "--providers", DHT_FLOOD_PROVIDERS, "--records", DHT_FLOOD_RECORDS,
                         "--queries", DHT_FLOOD_QUERIES, "--streams", 8, timeout=240)
        r["attack"] = summary
        cpu_before = hs.cpu_seconds(self.pid)
        past = run_js("dht", self.target, "--peers", 1, "--providers", DHT_PAST_CAPS_PROVIDERS,
                      "--streams", 4, timeout=240)
        r["past_caps"] = past
        r["past_caps_cpu_per_request_ms"] = round(
            (hs.cpu_seconds(self.pid) - cpu_before) / DHT_PAST_CAPS_PROVIDERS * 1000, 3)
        until = time.time()
        r["rss_after"] = self.settled_rss()
        r["rss_growth"] = r["rss_after"] - self.baseline

        def delivered():
            # Every flood stream was written to its end: its final PING was answered, or the
            # node reset it (e.g. on a record its full store refused), which is its right.
            self.assertEqual(summary["errors"], [], summary)
            self.assertEqual(summary["pongs"] + summary["streams_reset"], summary["streams"],
                             summary)

        self.run_checks([
            ("honest_pings", lambda: self.check_honest(self.started, until)),
            ("attack_delivered", delivered),
            ("rss_within_48MiB", lambda: self.assertLessEqual(
                r["rss_growth"], DHT_FLOOD_RSS_BOUND,
                "RSS grew by %s (bound %s)" % (mib(r["rss_growth"]), mib(DHT_FLOOD_RSS_BOUND)))),
            ("past_caps_cheap", lambda: self.assertLessEqual(
                r["past_caps_cpu_per_request_ms"], DHT_PAST_CAPS_CPU_PER_REQUEST_S * 1000,
                "%.2f ms of node CPU per provider record past the caps" % (
                    r["past_caps_cpu_per_request_ms"]))),
        ])


class IdleConnectionTest(HostileTestCase):
    """Issue 16: memory per idle authenticated connection (200 js identities, identified)."""

    CONNECTIONS = 200

    def test_memory_per_idle_connection(self):
        r = self.result
        # Six handshakes at a time from one address: the node takes at most 8 in flight per
        # address, and a dialler that counts a connection as up slightly before the node does
        # would, at 8, now and then be one over.
        idle = self.js("idle", "--count", self.CONNECTIONS, "--concurrency", 6)
        up = idle.next(180, lambda o: o.get("kind") == "connected", "the idle connections")
        r["idle"] = up
        harness.wait_until(
            lambda: hs.tcp_connections_of(self.pid) >= self.base_sockets + up["connected"],
            30, 0.2, message="the node to hold the idle connections")
        time.sleep(SETTLE_S)
        r["rss_with_idle"] = self.settled_rss(wait_for_close=False)
        r["sockets_with_idle"] = hs.tcp_connections_of(self.pid)
        r["bytes_per_connection"] = round(
            (r["rss_with_idle"] - self.baseline) / max(1, up["connected"]))
        idle.finish()
        until = time.time()
        r["rss_after"] = self.settled_rss()
        self.run_checks([
            ("honest_pings", lambda: self.check_honest(self.started, until)),
            ("all_connected", lambda: self.assertEqual(up["connected"], self.CONNECTIONS, up)),
            ("per_connection_within_64KiB", lambda: self.assertLessEqual(
                r["bytes_per_connection"], IDLE_CONNECTION_BOUND,
                "%.1f KiB per idle connection" % (r["bytes_per_connection"] / KIB))),
        ])


if __name__ == "__main__":
    unittest.main()
