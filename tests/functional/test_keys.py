"""The node key: creation, keygen, bad key files, Go-compatible key files (SPEC sections 3-4)."""

import os
import stat
import unittest

import harness
from harness import (PEER_ID_RE, ed25519_peer_id_from_key_file_bytes, node_pids, read_bytes,
                     write_bytes)

# Test vector from the libp2p specs (peer-ids/peer-ids.md): an Ed25519 private key in the
# protobuf encoding go-libp2p's crypto.MarshalPrivateKey writes. Its public key (the last 32 bytes)
# is listed there as 080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e.
SPEC_PRIVATE_KEY = bytes.fromhex(
    "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d"
    "1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
SPEC_PUBLIC_KEY = bytes.fromhex(
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e")
# Identity multihash of SPEC_PUBLIC_KEY in base58btc (computed here from the bytes, and the same
# value other libp2p implementations pin for this vector).
SPEC_PEER_ID = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq"


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class KeysTest(harness.NodeTestCase):

    def key_path(self, data):
        return os.path.join(data, "keys", "node.key")

    def assert_start_refused(self, data, key_bytes, *needles, key_option=None):
        """start fails with exit 1 naming the problem; nothing runs; the key is untouched."""
        key_file = key_option or self.key_path(data)
        args = ["start", "-data", data, "-listen", harness.LOOPBACK_ANY_PORT]
        if key_option:
            args += ["-key", key_option]
        result = self.cli(*args)
        self.assertEqual(result.rc, 1, result)
        self.assertIn(key_file, result.err, result)
        for needle in needles:
            self.assertIn(needle, result.err, result)
        self.assertNotIn("Node started", result.out)
        self.assertEqual(read_bytes(key_file), key_bytes, "the key file was changed")
        self.assertFalse(os.path.exists(key_file + ".bak"))
        self.assertFalse(os.path.exists(self.pid_file(data)), "node.pid created")
        self.assertEqual(node_pids(data), [])
        self.assertEqual(self.cli("status", "-data", data).rc, 3)
        return result

    def test_first_start_creates_private_key(self):
        data = self.data_dir()
        result, status = self.start_node(data)
        key_file = self.key_path(data)
        self.assertIn(key_file, result.out)
        self.assertEqual(mode_of(os.path.dirname(key_file)), 0o700)
        self.assertEqual(mode_of(key_file), 0o600)
        key = read_bytes(key_file)
        self.assertEqual(len(key), 68)
        self.assertEqual(key[:4], b"\x08\x01\x12\x40", "not a libp2p protobuf Ed25519 key")
        self.assertEqual(status["node_id"], ed25519_peer_id_from_key_file_bytes(key))
        # The key is kept across restarts.
        self.stop_node(data)
        result, again = self.start_node(data)
        self.assertNotIn("Created a new node key", result.out)
        self.assertEqual(again["node_id"], status["node_id"])
        self.assertEqual(read_bytes(key_file), key)

    def test_keygen_refuses_existing_key(self):
        data = self.data_dir()
        first = self.cli("keygen", "-data", data)
        self.assertEqual(first.rc, 0, first)
        key_file = self.key_path(data)
        key = read_bytes(key_file)
        self.assertEqual(mode_of(key_file), 0o600)
        self.assertEqual(mode_of(os.path.dirname(key_file)), 0o700)
        self.assertIn("Node ID:     " + ed25519_peer_id_from_key_file_bytes(key), first.out)
        again = self.cli("keygen", "-data", data)
        self.assertEqual(again.rc, 1, again)
        self.assertIn("already exists", again.err)
        self.assertIn("-force", again.err)
        self.assertEqual(read_bytes(key_file), key)
        self.assertFalse(os.path.exists(key_file + ".bak"))

    def test_keygen_force_keeps_backup(self):
        data = self.data_dir()
        self.assertEqual(self.cli("keygen", "-data", data).rc, 0)
        key_file = self.key_path(data)
        old = read_bytes(key_file)
        old_id = ed25519_peer_id_from_key_file_bytes(old)
        result = self.cli("keygen", "-data", data, "-force")
        self.assertEqual(result.rc, 0, result)
        new = read_bytes(key_file)
        new_id = ed25519_peer_id_from_key_file_bytes(new)
        self.assertNotEqual(new, old)
        self.assertNotEqual(new_id, old_id)
        self.assertIn("Node ID:     " + new_id, result.out)
        self.assertRegex(new_id, PEER_ID_RE)
        self.assertEqual(read_bytes(key_file + ".bak"), old)
        self.assertEqual(mode_of(key_file), 0o600)
        self.assertEqual(mode_of(key_file + ".bak") & 0o077, 0, "the backup is readable by others")
        # The node uses the new key.
        _, status = self.start_node(data)
        self.assertEqual(status["node_id"], new_id)

    def test_keygen_types_start_and_run(self):
        for key_type, prefix in (("rsa", "Qm"), ("secp256k1", "16Uiu2"), ("ecdsa", "Qm")):
            data = self.data_dir("data-" + key_type)
            result = self.cli("keygen", "-data", data, "-type", key_type)
            self.assertEqual(result.rc, 0, result)
            node_id = result.out.split("Node ID:", 1)[1].split()[0]
            self.assertTrue(node_id.startswith(prefix), result)
            _, status = self.start_node(data)
            self.assertEqual(status["node_id"], node_id)

    def test_keygen_refuses_bad_type_and_bits(self):
        data = self.data_dir()
        for args in (("-type", "dsa"), ("-type", "rsa", "-bits", "1024"),
                     ("-type", "ecdsa", "-bits", "2048")):
            result = self.cli("keygen", "-data", data, *args)
            self.assertEqual(result.rc, 2, result)
            self.assertFalse(os.path.exists(self.key_path(data)))

    def test_keygen_with_key_option(self):
        key_file = os.path.join(self.tmp, "elsewhere", "my.key")
        result = self.cli("keygen", "-key", key_file)
        self.assertEqual(result.rc, 0, result)
        self.assertIn(key_file, result.out)
        self.assertIn("Node ID:     " + ed25519_peer_id_from_key_file_bytes(read_bytes(key_file)),
                      result.out)
        self.assertEqual(mode_of(key_file), 0o600)

    def test_corrupt_key(self):
        data = self.data_dir()
        key = b"\xff" + os.urandom(67)
        write_bytes(self.key_path(data), key)
        self.assert_start_refused(data, key)

    def test_truncated_key(self):
        data = self.data_dir()
        key = SPEC_PRIVATE_KEY[:30]
        write_bytes(self.key_path(data), key)
        self.assert_start_refused(data, key)

    def test_empty_key(self):
        data = self.data_dir()
        write_bytes(self.key_path(data), b"")
        self.assert_start_refused(data, b"", "empty")

    def test_wrong_key_type(self):
        data = self.data_dir()
        key = b"\x08\x00\x12\x40" + os.urandom(64)  # KeyType RSA (0)
        write_bytes(self.key_path(data), key)
        result = self.assert_start_refused(data, key)
        self.assertIn("rsa", result.err.lower(), result)

    def test_key_readable_by_others(self):
        data = self.data_dir()
        for mode in (0o640, 0o604, 0o644):
            write_bytes(self.key_path(data), SPEC_PRIVATE_KEY, mode=mode)
            self.assert_start_refused(data, SPEC_PRIVATE_KEY, "chmod 600")
            self.assertEqual(mode_of(self.key_path(data)), mode, "start changed the key's mode")
        # After the fix the same key works.
        os.chmod(self.key_path(data), 0o600)
        _, status = self.start_node(data)
        self.assertEqual(status["node_id"], SPEC_PEER_ID)

    def test_go_format_key_keeps_peer_id(self):
        self.assertEqual(SPEC_PRIVATE_KEY[36:], SPEC_PUBLIC_KEY[4:])
        self.assertEqual(ed25519_peer_id_from_key_file_bytes(SPEC_PRIVATE_KEY), SPEC_PEER_ID)
        # In the default place ...
        data = self.data_dir()
        write_bytes(self.key_path(data), SPEC_PRIVATE_KEY)
        result, status = self.start_node(data)
        self.assertIn("Node ID:     " + SPEC_PEER_ID, result.out)
        self.assertEqual(status["node_id"], SPEC_PEER_ID)
        for addr in status["listen_addrs"]:
            self.assertTrue(addr.endswith("/p2p/" + SPEC_PEER_ID), addr)
        self.assertNotIn("Created a new node key", result.out)
        self.assertEqual(read_bytes(self.key_path(data)), SPEC_PRIVATE_KEY)
        self.stop_node(data)
        # ... and with -key, twice.
        key_file = os.path.join(self.tmp, "go-node.key")
        write_bytes(key_file, SPEC_PRIVATE_KEY)
        other = self.data_dir("other")
        for _ in range(2):
            _, status = self.start_node(other, extra=["-key", key_file])
            self.assertEqual(status["node_id"], SPEC_PEER_ID)
            self.stop_node(other)
        self.assertFalse(os.path.exists(self.key_path(other)), "a default key was created too")
        self.assertEqual(read_bytes(key_file), SPEC_PRIVATE_KEY)

    def test_missing_key_option_file_is_created(self):
        data = self.data_dir()
        key_file = os.path.join(self.tmp, "keys2", "node.key")
        result, status = self.start_node(data, extra=["-key", key_file])
        self.assertEqual(mode_of(key_file), 0o600)
        self.assertEqual(status["node_id"], ed25519_peer_id_from_key_file_bytes(
            read_bytes(key_file)))
        self.assertFalse(os.path.exists(self.key_path(data)))


if __name__ == "__main__":
    unittest.main()
