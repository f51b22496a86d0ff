"""`agentnetwork p2pd` (go-libp2p-daemon's flags and start-up lines, its control protocol on a
unix socket) and `start -p2pd-listen` (the regular node serving the same protocol).

The control protocol is spoken here by hand: varint-delimited protobuf messages, encoded and
decoded with a few lines of code (standard library only). Every wait is bounded; the harness
kills every process it started.
"""

import os
import signal
import socket
import subprocess
import unittest

import harness
from harness import LOOPBACK_ANY_PORT, PEER_ID_RE, wait_until

TIMEOUT = 20.0

# p2pd.proto: Request.Type and Response.Type values.
IDENTIFY, CONNECT, LIST_PEERS, PUBSUB = 0, 1, 5, 8
OK, ERROR = 0, 1


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def field_bytes(number, data):
    return varint((number << 3) | 2) + varint(len(data)) + data


def read_varint(data, pos):
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def parse_message(data):
    """{field number: [values]}: ints for varints, bytes for length-delimited fields."""
    fields = {}
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value = data[pos:pos + length]
            pos += length
        else:
            raise AssertionError("unexpected wire type %d" % wire)
        fields.setdefault(number, []).append(value)
    return fields


def b58decode(text):
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = 0
    for char in text:
        n = n * 58 + alphabet.index(char)
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + raw


def multiaddr_ip4_tcp(text):
    """/ip4/A/tcp/P as a binary multiaddr."""
    parts = text.strip("/").split("/")
    assert parts[0] == "ip4" and parts[2] == "tcp", text
    ip = bytes(int(x) for x in parts[1].split("."))
    return varint(4) + ip + varint(6) + int(parts[3]).to_bytes(2, "big")


def multiaddr_to_text(data):
    pos, out = 0, ""
    while pos < len(data):
        code, pos = read_varint(data, pos)
        if code == 4:
            out += "/ip4/" + ".".join(str(b) for b in data[pos:pos + 4])
            pos += 4
        elif code == 6:
            out += "/tcp/%d" % int.from_bytes(data[pos:pos + 2], "big")
            pos += 2
        else:
            return out + "/<%d>" % code
    return out


def call(socket_path, request):
    """One request on a fresh control connection; the parsed Response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect(socket_path)
        sock.sendall(varint(len(request)) + request)
        data = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            try:
                length, pos = read_varint(data, 0)
            except IndexError:
                continue
            if len(data) >= pos + length:
                return parse_message(data[pos:pos + length])
        raise AssertionError("no response on %s (got %r)" % (socket_path, data))


class P2pdTest(harness.NodeTestCase):
    def start_p2pd(self, name, *extra):
        socket_path = os.path.join(self.tmp, name + ".sock")
        proc = self.spawn_binary(
            ["p2pd", "-listen=/unix" + socket_path, "-hostAddrs=/ip4/127.0.0.1/tcp/0",
             "-noise=true"] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines = []
        while True:
            line = proc.stdout.readline()
            self.assertTrue(line, "p2pd exited early: %r, stderr %r" % (
                lines, proc.stderr.read() if proc.poll() is not None else ""))
            lines.append(line.rstrip("\n"))
            if line.startswith("Peer Addrs:"):
                address = proc.stdout.readline().rstrip("\n")
                lines.append(address)
                break
        return proc, socket_path, lines

    def test_p2pd_prints_its_lines_and_serves_identify_and_connect(self):
        first, first_socket, first_lines = self.start_p2pd("first")
        second, second_socket, second_lines = self.start_p2pd("second")
        for socket_path, lines in ((first_socket, first_lines), (second_socket, second_lines)):
            self.assertEqual(lines[0], "Control socket: /unix" + socket_path, lines)
            self.assertTrue(lines[1].startswith("Peer ID: "), lines)
            self.assertRegex(lines[1][len("Peer ID: "):], PEER_ID_RE)
            self.assertEqual(lines[2], "Peer Addrs:", lines)
            self.assertRegex(lines[3], r"^/ip4/127\.0\.0\.1/tcp/\d+$", lines)
            self.assertEqual(os.stat(socket_path).st_mode & 0o777, 0o600)

        second_id = b58decode(second_lines[1][len("Peer ID: "):])
        identify = call(second_socket, field_varint(1, IDENTIFY))
        self.assertEqual(identify[1], [OK], identify)
        ident = parse_message(identify[4][0])
        self.assertEqual(ident[1], [second_id])
        self.assertEqual([multiaddr_to_text(a) for a in ident[2]], [second_lines[3]])

        connect = field_varint(1, CONNECT) + field_bytes(
            2, field_bytes(1, second_id) + field_bytes(2, multiaddr_ip4_tcp(second_lines[3])))
        connected = call(first_socket, connect)
        self.assertEqual(connected[1], [OK], connected)
        peers = call(first_socket, field_varint(1, LIST_PEERS))
        self.assertEqual([parse_message(p)[1][0] for p in peers.get(6, [])], [second_id])

        refused = call(first_socket, field_varint(1, PUBSUB) + field_bytes(8, field_varint(1, 0)))
        self.assertEqual(refused[1], [ERROR])
        self.assertIn(b"PubSub not enabled", parse_message(refused[2][0])[1][0])

        for proc, socket_path in ((first, first_socket), (second, second_socket)):
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=TIMEOUT), 0)
            self.assertFalse(os.path.exists(socket_path), "control socket left behind")

    def test_p2pd_flag_errors_exit_2(self):
        for args, needle in ((["-nosuchflag"], "-nosuchflag"),
                             (["-muxer=spdy"], "spdy"),
                             (["-pubsubRouter=randomsub"], "randomsub"),
                             (["-noise=maybe"], "maybe"),
                             (["extra"], "extra")):
            result = self.cli("p2pd", *args)
            self.assert_usage_error(result, needle)
        help_result = self.cli("p2pd", "-h")
        self.assertEqual(help_result.rc, 0, help_result)
        self.assertIn("-hostAddrs", help_result.out)

    def test_start_with_p2pd_listen_serves_identify(self):
        data = self.data_dir("node")
        socket_path = os.path.join(self.tmp, "node-p2pd.sock")
        _, status = self.start_node(data, listen=LOOPBACK_ANY_PORT,
                                    extra=["-p2pd-listen", "/unix" + socket_path])
        wait_until(lambda: os.path.exists(socket_path), TIMEOUT, message="the p2pd socket")
        self.assertEqual(os.stat(socket_path).st_mode & 0o777, 0o600)
        identify = call(socket_path, field_varint(1, IDENTIFY))
        self.assertEqual(identify[1], [OK], identify)
        ident = parse_message(identify[4][0])
        self.assertEqual(ident[1], [b58decode(status["node_id"])])
        self.stop_node(data)
        self.assertFalse(os.path.exists(socket_path), "control socket left behind")

    def test_bad_p2pd_listen_is_a_usage_error(self):
        result = self.cli("start", "-data", self.data_dir("bad"), "-p2pd-listen", "/dns4/x/tcp/1")
        self.assert_usage_error(result, "-p2pd-listen")


if __name__ == "__main__":
    unittest.main()
