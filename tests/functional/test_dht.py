"""The Kademlia DHT between real nodes on 127.0.0.1 (SPEC section 4, issue "DHT, roles, relay"):
a network that finds itself from one bootstrap address, `find` through the DHT, records put on
one node and read on another, the bootstrap node's departure, and the DHT modes.

Each normal node is told only the bootstrap node's address. After identify shows a DHT server,
a node looks itself up (which connects it to the peers closest to it), refreshes its buckets
and dials the peers it learned until the connection manager's low-water mark. Every wait is
bounded; the bounds are generous and only keep a broken node from hanging the run. Every node
is stopped by the harness's cleanup, even when a test fails.
"""

import re
import time
import unittest

import grpc

import harness
from grpc_support import connect, node_pb2
from harness import LOOPBACK_ANY_PORT, wait_until

KAD_PROTOCOL = "/ipfs/kad/1.0.0"
NORMAL_NODES = 20
# The bound: every node has found at least MIN_PEERS peers within DISCOVERY_TIMEOUT.
MIN_PEERS = 10
DISCOVERY_TIMEOUT = 30.0
# A lookup in a 21-node network takes milliseconds; this only bounds a broken one.
FIND_TIMEOUT = 70.0

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58_decode(text):
    number = 0
    for char in text:
        number = number * 58 + BASE58_ALPHABET.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * leading_zeros + body


def public_key_record(peer_id):
    """The /pk/ record of an Ed25519 peer: key "/pk/" + the peer ID's multihash, value the
    protobuf public key, which an identity multihash carries inline (after 0x00, length)."""
    multihash = base58_decode(peer_id)
    assert multihash[0] == 0x00 and multihash[1] == len(multihash) - 2, peer_id
    return b"/pk/" + multihash, multihash[2:]


class DhtNetworkTest(harness.NodeTestCase):

    def start_named(self, name, extra=(), listen=LOOPBACK_ANY_PORT):
        data = self.data_dir(name)
        _, status = self.start_node(data, listen=listen, extra=list(extra))
        return data, status

    def peer_count(self, data):
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0, status)
        return status["peer_count"]

    def peer_ids(self, data):
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0, status)
        return {peer["peer_id"] for peer in status["peers"]}

    def find(self, data, peer_id):
        return self.cli("find", peer_id, "-data", data, timeout=FIND_TIMEOUT + 5)

    def start_network(self):
        bootstrap_data, bootstrap_status = self.start_named(
            "bootstrap", extra=["-role", "bootstrap"])
        self.assertEqual(bootstrap_status["role"], "bootstrap")
        bootstrap_address = bootstrap_status["listen_addrs"][0]
        nodes = []
        for index in range(NORMAL_NODES):
            data, status = self.start_named("node%02d" % index,
                                            extra=["-bootstrap", bootstrap_address])
            self.assertEqual(status["role"], "normal")
            nodes.append((data, status["node_id"], status["listen_addrs"][0]))
        return (bootstrap_data, bootstrap_status["node_id"]), nodes

    def wait_discovery(self, nodes):
        counts = {}

        def every_node_found_enough():
            for data, node_id, _ in nodes:
                counts[node_id] = self.peer_count(data)
            return all(count >= MIN_PEERS for count in counts.values())

        wait_until(every_node_found_enough, DISCOVERY_TIMEOUT, interval=0.5,
                   message=lambda: "every node connected to >= %d peers (counts: %s)" % (
                       MIN_PEERS, sorted(counts.values())))
        return counts

    def test_network_finds_itself_and_serves_find_put_get(self):
        started = time.monotonic()
        (bootstrap_data, bootstrap_id), nodes = self.start_network()
        counts = self.wait_discovery(nodes)
        elapsed = time.monotonic() - started
        # Peers beyond the bootstrap node were found through the DHT: the bootstrap node
        # gives nobody anything else.
        self.assertGreaterEqual(min(counts.values()), MIN_PEERS)
        print("discovery: 21 nodes, every node >= %d peers after %.1f s (min %d, max %d)" % (
            MIN_PEERS, elapsed, min(counts.values()), max(counts.values())))

        # The bootstrap node advertises the DHT (it is a DHT server).
        with connect(nodes[0][0]) as client:
            described = client.ListPeers()
            by_id = {peer.peer_id: peer for peer in described.peers}
            self.assertIn(bootstrap_id, by_id)
            self.assertIn(KAD_PROTOCOL, by_id[bootstrap_id].protocols)

        # `find` of every node from another (its neighbour in start order) succeeds.
        for index, (data, _, _) in enumerate(nodes):
            _, target_id, target_address = nodes[(index + 7) % len(nodes)]
            result = self.find(data, target_id)
            self.assertEqual(result.rc, 0, result)
            self.assertIn("Peer:        " + target_id, result.out)
            self.assertIn(re.sub(r"/p2p/.*$", "", target_address), result.out)

        # A peer we are not connected to is found by a lookup through the DHT.
        finder_data, _, _ = nodes[3]
        _, target_id, target_address = nodes[11]
        with connect(finder_data) as client:
            client.Disconnect(peer_id=target_id)
            self.assertNotIn(target_id, {p.peer_id for p in client.ListPeers().peers})
            found = client.FindPeer(peer_id=target_id, timeout=FIND_TIMEOUT)
            self.assertTrue(found.found_through_dht, found)
            self.assertIn(re.sub(r"/p2p/.*$", "", target_address), list(found.addresses))
            # The lookup queried the target itself, which reconnected it.
            self.assertTrue(found.connected, found)

            closest = client.GetClosestPeers(key=base58_decode(target_id), timeout=FIND_TIMEOUT)
            self.assertGreaterEqual(len(closest.peer_ids), MIN_PEERS, closest)
            # The target itself is the closest peer to its own ID.
            self.assertEqual(closest.peer_ids[0], target_id, closest)

        # A record put on one node is read on another.
        writer_data, writer_id, _ = nodes[5]
        reader_data, _, _ = nodes[16]
        key, value = public_key_record(writer_id)
        with connect(writer_data) as writer:
            put = writer.PutValue(key=key, value=value, timeout=FIND_TIMEOUT)
            self.assertGreaterEqual(put.stored_at, 1, put)
            # Refused before any network work: a record no validator accepts.
            with self.assertRaises(grpc.RpcError) as refused:
                writer.PutValue(key=key, value=value + b"x")
            self.assertEqual(refused.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            with self.assertRaises(grpc.RpcError) as unknown_namespace:
                writer.PutValue(key=b"/mine/key", value=b"v")
            self.assertEqual(unknown_namespace.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        with connect(reader_data) as reader:
            got = reader.GetValue(key=key, timeout=FIND_TIMEOUT)
            self.assertEqual(got.value, value)
            missing_key, _ = public_key_record(bootstrap_id)
            with self.assertRaises(grpc.RpcError) as missing:
                reader.GetValue(key=missing_key, timeout=FIND_TIMEOUT)
            self.assertEqual(missing.exception.code(), grpc.StatusCode.NOT_FOUND)

        # The bootstrap node leaves: the others stay one network.
        self.stop_node(bootstrap_data)
        adjacency = {}
        for data, node_id, _ in nodes:
            adjacency[node_id] = self.peer_ids(data) - {bootstrap_id}
        reached = {nodes[0][1]}
        frontier = [nodes[0][1]]
        while frontier:
            current = frontier.pop()
            for neighbour in adjacency.get(current, ()):
                if neighbour not in reached:
                    reached.add(neighbour)
                    frontier.append(neighbour)
        self.assertEqual(reached, {node_id for _, node_id, _ in nodes},
                         "the network split without its bootstrap node")
        # And a lookup still works without it.
        _, far_id, far_address = nodes[19]
        with connect(nodes[0][0]) as client:
            if far_id in {p.peer_id for p in client.ListPeers().peers}:
                client.Disconnect(peer_id=far_id)
            found = client.FindPeer(peer_id=far_id, timeout=FIND_TIMEOUT)
            self.assertIn(re.sub(r"/p2p/.*$", "", far_address), list(found.addresses))


class DhtModeTest(harness.NodeTestCase):

    def test_modes_roles_and_refusals(self):
        bootstrap = self.data_dir("bootstrap")
        _, bootstrap_status = self.start_node(bootstrap, extra=["-role", "bootstrap"])
        address = bootstrap_status["listen_addrs"][0]
        with open(self.log_file(bootstrap)) as log:
            self.assertIn("role bootstrap, DHT server mode", log.read())

        # A node that does not listen is a DHT client: it uses the DHT but does not advertise
        # it, so that nobody puts it in a routing table.
        client_data = self.data_dir("client")
        _, client_status = self.start_node(client_data, listen=None,
                                           extra=["-listen", "none", "-bootstrap", address])
        # No direct address (a relayed one may appear: the bootstrap node is also a relay).
        self.assertEqual([a for a in client_status["listen_addrs"] if "/p2p-circuit/" not in a],
                         [], client_status)
        server_data = self.data_dir("server")
        _, server_status = self.start_node(server_data, extra=["-bootstrap", address])
        with open(self.log_file(client_data)) as log:
            self.assertIn("role normal, DHT client mode", log.read())

        with connect(bootstrap) as client:
            def protocols_of(peer_id):
                for peer in client.ListPeers().peers:
                    if peer.peer_id == peer_id and peer.agent_version:
                        return list(peer.protocols)
                return None

            wait_until(lambda: protocols_of(client_status["node_id"]) is not None, 10,
                       message="the client node identified by the bootstrap node")
            wait_until(lambda: protocols_of(server_status["node_id"]) is not None, 10,
                       message="the server node identified by the bootstrap node")
            self.assertNotIn(KAD_PROTOCOL, protocols_of(client_status["node_id"]))
            self.assertIn(KAD_PROTOCOL, protocols_of(server_status["node_id"]))

        # The client finds the server through the DHT (the bootstrap node answers).
        with connect(client_data) as client:
            found = client.FindPeer(peer_id=server_status["node_id"], timeout=FIND_TIMEOUT)
            self.assertTrue(found.addresses, found)

        # -dht-mode server overrides a node without listen address; client overrides a listener.
        forced = self.data_dir("forced")
        self.start_node(forced, extra=["-dht-mode", "client"])
        with open(self.log_file(forced)) as log:
            self.assertIn("DHT client mode", log.read())

        # Contradictions are refused before anything starts.
        refused = self.cli("start", "-data", self.data_dir("bad1"), "-role", "relay",
                           "-dht-mode", "client")
        self.assertEqual(refused.rc, 2, refused)
        self.assertIn("serves the DHT", refused.err)
        refused = self.cli("start", "-data", self.data_dir("bad2"), "-role", "bootstrap",
                           "-listen", "none")
        self.assertEqual(refused.rc, 2, refused)
        self.assertIn("needs a listen address", refused.err)
        refused = self.cli("start", "-data", self.data_dir("bad3"), "-dht-mode", "sometimes")
        self.assertEqual(refused.rc, 2, refused)
        self.assertIn("expected auto, client or server", refused.err)

    def test_dht_calls_without_peers(self):
        alone = self.data_dir("alone")
        self.start_node(alone)
        with connect(alone) as client:
            with self.assertRaises(grpc.RpcError) as no_peers:
                client.GetClosestPeers(key=b"anything")
            self.assertEqual(no_peers.exception.code(), grpc.StatusCode.UNAVAILABLE)
            self.assertIn("no DHT peers", no_peers.exception.details())
            # A record put with nobody to send it to stays here and is read back here.
            status = client.GetStatus()
            key, value = public_key_record(status.peer_id)
            put = client.PutValue(key=key, value=value)
            self.assertEqual(put.stored_at, 0)
            self.assertEqual(client.GetValue(key=key).value, value)
            missing = self.cli("find", "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
                               "-data", alone)
            self.assertEqual(missing.rc, 1, missing)


if __name__ == "__main__":
    unittest.main()
