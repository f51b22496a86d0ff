"""Circuit relay v2 between real nodes on 127.0.0.1 (SPEC section 4, issue "DHT, roles, relay"):
a node that nobody can dial (it has no listen address) reserves a slot on a relay and is
reached through it; the relay's limits (reservations, bytes per circuit) are enforced.

Roles: `bootstrap` and `relay` nodes run the hop service; every node is a relay client. A node
without listen address makes its bootstrap peers its relays when they offer the hop protocol;
`-static-relay ADDR` names relays explicitly. Relayed addresses
(`/ip4/.../tcp/P/p2p/RELAY/p2p-circuit/p2p/SELF`) appear in `status` once a reservation holds.

Every wait is bounded; the bounds are generous and only keep a broken node from hanging the run.
Every node is stopped by the harness's cleanup, even when a test fails.
"""

import time
import unittest

import grpc

import harness
from grpc_support import connect
from harness import LOOPBACK_ANY_PORT, wait_until

HOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/hop"
STOP_PROTOCOL = "/libp2p/circuit/relay/0.2.0/stop"
RESERVATION_TIMEOUT = 15.0
CALL_TIMEOUT = 30.0


def relayed(addresses):
    return [address for address in addresses if "/p2p-circuit/" in address]


class RelayTest(harness.NodeTestCase):

    def status(self, data):
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0, status)
        return status

    def wait_relayed_address(self, data, relay_id):
        found = {}

        def has_one():
            addresses = relayed(self.status(data)["listen_addrs"])
            found["addresses"] = addresses
            return bool(addresses)

        wait_until(has_one, RESERVATION_TIMEOUT, interval=0.2,
                   message=lambda: "a relayed address in the status of %s (now %s)" % (
                       data, found.get("addresses")))
        address = found["addresses"][0]
        self.assertIn("/p2p/%s/p2p-circuit/p2p/" % relay_id, address)
        return address

    def test_unreachable_node_is_reached_through_the_relay(self):
        relay = self.data_dir("relay")
        _, relay_status = self.start_node(relay, extra=["-role", "relay"])
        relay_address = relay_status["listen_addrs"][0]
        relay_id = relay_status["node_id"]
        with open(self.log_file(relay)) as log:
            self.assertIn("relay service on", log.read())

        # B listens nowhere: only the relay can bring it connections.
        hidden = self.data_dir("hidden")
        _, hidden_status = self.start_node(hidden, listen=None,
                                           extra=["-listen", "none", "-bootstrap", relay_address])
        hidden_id = hidden_status["node_id"]
        circuit = self.wait_relayed_address(hidden, relay_id)
        self.assertTrue(circuit.endswith("/p2p-circuit/p2p/" + hidden_id), circuit)
        self.assertTrue(circuit.startswith(relay_address.rsplit("/p2p/", 1)[0]), circuit)
        with open(self.log_file(hidden)) as log:
            self.assertIn("reserving a relay slot on", log.read())

        # C knows nothing but the circuit address.
        dialer = self.data_dir("dialer")
        self.start_node(dialer)
        result = self.cli("connect", circuit, "-data", dialer, timeout=CALL_TIMEOUT)
        self.assertEqual(result.rc, 0, result)
        ping = self.cli("ping", hidden_id, "-n", "2", "-data", dialer, timeout=CALL_TIMEOUT)
        self.assertEqual(ping.rc, 0, ping)
        self.assertIn("2 pings, 2 ok", ping.out)

        with connect(dialer) as client:
            peers = {peer.peer_id: peer for peer in client.ListPeers().peers}
            self.assertIn(hidden_id, peers)
            self.assertIn("/p2p-circuit", peers[hidden_id].address)
        # B sees C as an inbound connection through the relay.
        with connect(hidden) as client:
            def inbound_from_dialer():
                for peer in client.ListPeers().peers:
                    if "/p2p-circuit" in peer.address and peer.direction == 1:
                        return True
                return False
            wait_until(inbound_from_dialer, 10, message="B's relayed inbound connection")
            # And the live status reports the relayed address too.
            self.assertIn(circuit, list(client.GetStatus().listen_addrs))
        # The relay advertises the hop protocol; every node the stop protocol.
        with connect(hidden) as client:
            relay_peer = [p for p in client.ListPeers().peers if p.peer_id == relay_id][0]
            self.assertIn(HOP_PROTOCOL, relay_peer.protocols)
            self.assertIn(STOP_PROTOCOL, relay_peer.protocols)

    def test_relay_limits_are_enforced(self):
        relay = self.data_dir("relay")
        _, relay_status = self.start_node(
            relay, extra=["-role", "relay", "-relay-max-reservations", "1",
                          "-relay-circuit-bytes", "8192"])
        relay_address = relay_status["listen_addrs"][0]
        relay_id = relay_status["node_id"]

        first = self.data_dir("first")
        _, first_status = self.start_node(first, listen=None,
                                          extra=["-listen", "none", "-static-relay",
                                                 relay_address])
        circuit = self.wait_relayed_address(first, relay_id)

        # The relay holds one reservation: a second node's RESERVE is refused, so it never gets
        # a relayed address (it keeps retrying, and keeps being refused).
        second = self.data_dir("second")
        self.start_node(second, listen=None,
                        extra=["-listen", "none", "-static-relay", relay_address])
        with connect(second) as client:
            wait_until(lambda: any(p.peer_id == relay_id for p in client.ListPeers().peers), 10,
                       message="the second node connected to the relay")
        time.sleep(2.0)  # gives a wrongly admitted reservation time to show
        self.assertEqual(relayed(self.status(second)["listen_addrs"]), [])
        self.assertTrue(relayed(self.status(first)["listen_addrs"]))

        # A circuit carries at most 8 KiB each way: back-to-back pings outrun it, the relay
        # cuts the circuit, and the relayed connection is gone.
        dialer = self.data_dir("dialer")
        self.start_node(dialer)
        with connect(dialer) as client:
            client.Connect(address=circuit, timeout=CALL_TIMEOUT)
            with self.assertRaises(grpc.RpcError) as cut:
                for _ in range(20):
                    client.Ping(peer_id=first_status["node_id"], count=100, timeout=CALL_TIMEOUT)
            self.assertIn(cut.exception.code(),
                          (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND))
            wait_until(lambda: all(p.peer_id != first_status["node_id"]
                                   for p in client.ListPeers().peers), 10,
                       message="the cut circuit's connection closed")
        # The relay itself is fine and still relays: a new circuit works.
        with connect(dialer) as client:
            client.Connect(address=circuit, timeout=CALL_TIMEOUT)
            self.assertEqual(len(client.Ping(peer_id=first_status["node_id"]).rtt_ns), 1)

    def test_normal_node_does_not_relay(self):
        normal = self.data_dir("normal")
        _, normal_status = self.start_node(normal)
        hidden = self.data_dir("hidden")
        self.start_node(hidden, listen=None,
                        extra=["-listen", "none", "-bootstrap", normal_status["listen_addrs"][0]])
        with connect(hidden) as client:
            wait_until(lambda: any(p.peer_id == normal_status["node_id"] and p.agent_version
                                   for p in client.ListPeers().peers), 10,
                       message="identify of the normal node")
            normal_peer = [p for p in client.ListPeers().peers
                           if p.peer_id == normal_status["node_id"]][0]
            self.assertNotIn(HOP_PROTOCOL, normal_peer.protocols)
        time.sleep(1.0)
        self.assertEqual(relayed(self.status(hidden)["listen_addrs"]), [])


if __name__ == "__main__":
    unittest.main()
