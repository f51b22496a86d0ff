"""Shared helpers for the functional tests: real agentnetwork processes in temporary data dirs.

Every test gets its own temporary directory (removed afterwards). Every node a test starts is
stopped in the cleanup, whether the test passed or not: first `stop -timeout 5`, then SIGKILL
for whatever is left. Only the Python 3 standard library is used.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("AGENTNETWORK_BIN") or os.path.normpath(
    os.path.join(HERE, "..", "..", "build", "src", "agentnetwork"))

LOOPBACK_ANY_PORT = "/ip4/127.0.0.1/tcp/0"
PEER_ID_RE = re.compile(r"^12D3KooW[1-9A-HJ-NP-Za-km-z]{44}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
UPTIME_RE = re.compile(r"^(\d+h)?(\d+m)?\d+s$")
STATUS_KEYS = ("running", "pid", "start_time", "uptime", "node_id", "version", "role",
               "listen_addrs", "peer_count", "data_dir", "log_file", "pid_file")

# Bounds for the waits: generous, so a loaded machine does not make tests flaky.
CLI_TIMEOUT = 40.0
_DROPPED_ENV_PREFIXES = ("LC_", "AGENTNETWORK_")
_DROPPED_ENV = ("LANG", "LANGUAGE", "NOTIFY_SOCKET")


def base_env(extra=None):
    """The environment for the binary: English, no inherited systemd or agentnetwork settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in _DROPPED_ENV and not k.startswith(_DROPPED_ENV_PREFIXES)}
    env["LANG"] = "C"
    if extra:
        for key, value in extra.items():
            if value is None:
                env.pop(key, None)
            else:
                env[key] = value
    return env


class Result:
    def __init__(self, args, rc, out, err, elapsed):
        self.args, self.rc, self.out, self.err, self.elapsed = args, rc, out, err, elapsed

    @property
    def text(self):
        return self.out + self.err

    def __repr__(self):
        return ("command: agentnetwork %s\nexit code: %s (%.2fs)\n--- stdout ---\n%s"
                "--- stderr ---\n%s" % (" ".join(self.args), self.rc, self.elapsed,
                                        self.out, self.err))


def run_binary(args, cwd, env=None, timeout=CLI_TIMEOUT):
    """Runs the binary to completion; the result has rc, out, err. A hang fails the test."""
    args = [str(a) for a in args]
    started = time.monotonic()
    try:
        proc = subprocess.run([BIN] + args, cwd=cwd, env=env if env is not None else base_env(),
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("agentnetwork %s did not finish within %ss; stdout=%r stderr=%r" % (
            " ".join(args), timeout, e.stdout, e.stderr))
    return Result(args, proc.returncode, proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"), time.monotonic() - started)


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Polls predicate until it returns something truthy (returned), at most `timeout` seconds.

    `message` (a string, or a callable giving one at the time of failure) says what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            if callable(message):
                message = message()
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, message))
        time.sleep(interval)


def process_alive(pid):
    """True when pid names a live process (a zombie counts as gone)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        state = stat[stat.rindex(")") + 2]
        return state not in ("Z", "X")
    except (OSError, ValueError, IndexError):
        return False


def process_state(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
        return stat[stat.rindex(")") + 2]
    except (OSError, ValueError, IndexError):
        return None


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def node_pids(data_dir):
    """Live agentnetwork processes whose command line names this data dir (absolute path)."""
    data_dir = os.path.abspath(data_dir)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid == os.getpid():
            continue
        args = cmdline(pid)
        if not args or os.path.basename(args[0]) != os.path.basename(BIN):
            continue
        if any(a == data_dir or a.endswith("=" + data_dir) for a in args[1:]) \
                and process_alive(pid):
            found.append(pid)
    return sorted(found)


def pgrep_full(pattern):
    """pgrep -f, as an operator would check; live processes only."""
    proc = subprocess.run(["pgrep", "-f", pattern], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, timeout=10)
    pids = [int(p) for p in proc.stdout.split()]
    return [p for p in pids if p != os.getpid() and process_alive(p)]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_of(multiaddr):
    match = re.search(r"/tcp/(\d+)(/|$)", multiaddr)
    if not match:
        raise AssertionError("no /tcp/ port in %r" % multiaddr)
    return int(match.group(1))


# A multistream-select header of a version nobody speaks: a libp2p node must answer with its own
# header and then drop the connection.
BAD_MULTISTREAM_HEADER = b"\x13/multistream/9.9.9\n"


def connect_and_expect_close(port, host="127.0.0.1", timeout=5.0):
    """Connects, speaks a protocol the node must refuse, and returns (local port, bytes received
    before the node closed the connection). The node's answer starts with its multistream
    header, proving that it speaks libp2p on the port."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        local_port = s.getsockname()[1]
        s.settimeout(timeout)
        s.sendall(BAD_MULTISTREAM_HEADER)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if b"/multistream/1.0.0\n" not in received:
                    raise AssertionError("the node did not answer with a multistream header: %r"
                                         % received)
                return local_port, received
            received += chunk
        raise AssertionError("the node did not close the connection within %ss" % timeout)


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58btc(data):
    n = int.from_bytes(data, "big")
    text = ""
    while n:
        n, r = divmod(n, 58)
        text = _B58[r] + text
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + text


def ed25519_peer_id_from_key_file_bytes(key):
    """Peer ID of a libp2p protobuf Ed25519 private key (08 01 12 40 seed[32] pub[32]).

    The public key is stored in the file, so no Ed25519 arithmetic is needed: the peer ID is the
    identity multihash of the protobuf public key (08 01 12 20 pub), in base58btc.
    """
    if len(key) != 68 or key[:4] != b"\x08\x01\x12\x40":
        raise AssertionError("not a libp2p Ed25519 private key: %s" % key.hex())
    public_proto = b"\x08\x01\x12\x20" + key[36:68]
    return base58btc(b"\x00" + bytes([len(public_proto)]) + public_proto)


def read_text(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def write_bytes(path, data, mode=0o600):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


class NodeTestCase(unittest.TestCase):
    """Base class: a temp dir per test and a cleanup that leaves no process behind."""

    maxDiff = None

    def setUp(self):
        super().setUp()
        if not os.access(BIN, os.X_OK):
            self.fail("agentnetwork binary not found at %s (set AGENTNETWORK_BIN)" % BIN)
        self.tmp = os.path.realpath(tempfile.mkdtemp(prefix="anft-"))
        self._data_dirs = []
        self._procs = []
        # Cleanups run last-in first-out: processes go before their directory.
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.addCleanup(self._cleanup_processes)

    # ---- bookkeeping ----

    def data_dir(self, name="data"):
        """A data dir path in the temp dir (not created), whose node the cleanup will stop."""
        return self.track_data_dir(os.path.join(self.tmp, name))

    def track_data_dir(self, path):
        path = os.path.abspath(path)
        if path not in self._data_dirs:
            self._data_dirs.append(path)
        return path

    def track_process(self, proc):
        self._procs.append(proc)
        return proc

    def spawn(self, argv, **kwargs):
        """Popen, tracked: killed in the cleanup if still running."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return self.track_process(subprocess.Popen(argv, **kwargs))

    def spawn_binary(self, args, env=None, cwd=None, **kwargs):
        return self.spawn([BIN] + [str(a) for a in args], cwd=cwd or self.tmp,
                          env=env if env is not None else base_env(), **kwargs)

    def _cleanup_processes(self):
        for proc in self._procs:
            if proc.poll() is None:
                try:
                    proc.kill()
                except OSError:
                    pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    try:
                        stream.close()
                    except OSError:
                        pass
        for data_dir in self._data_dirs:
            pids = self._node_pids_for_cleanup(data_dir)
            if not pids:
                continue
            for pid in pids:  # a SIGSTOPped node must be able to act on SIGTERM
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
            try:
                run_binary(["stop", "-data", data_dir, "-timeout", "5"], cwd=self.tmp, timeout=20)
            except (AssertionError, OSError):
                pass
            for pid in self._node_pids_for_cleanup(data_dir) | pids:
                if not process_alive(pid):
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            deadline = time.monotonic() + 5
            while (any(process_alive(p) for p in pids) or node_pids(data_dir)) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)

    @staticmethod
    def _node_pids_for_cleanup(data_dir):
        """Node processes of a data dir: by command line, and by node.pid / node.status when
        that PID is an agentnetwork process (a stale PID file may name an unrelated one)."""
        pids = set(node_pids(data_dir))
        recorded = []
        try:
            recorded.append(int(read_text(os.path.join(data_dir, "node.pid")).strip()))
        except (OSError, ValueError):
            pass
        try:
            with open(os.path.join(data_dir, "node.status")) as f:
                recorded.append(int(json.load(f).get("pid", 0)))
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        for pid in recorded:
            args = cmdline(pid)
            if args and os.path.basename(args[0]) == os.path.basename(BIN) \
                    and process_alive(pid):
                pids.add(pid)
        return pids

    # ---- the CLI ----

    def cli(self, *args, env=None, cwd=None, timeout=CLI_TIMEOUT):
        return run_binary(list(args), cwd=cwd or self.tmp, env=env, timeout=timeout)

    def start_node(self, data_dir, listen=LOOPBACK_ANY_PORT, extra=(), env=None):
        """`start` that must succeed; returns (result, status dict from `status -json`)."""
        self.track_data_dir(data_dir)
        args = ["start", "-data", data_dir]
        if listen:
            args += ["-listen", listen]
        args += list(extra)
        result = self.cli(*args, env=env)
        self.assertEqual(result.rc, 0, result)
        rc, status = self.status_json(data_dir)
        self.assertEqual(rc, 0, status)
        return result, status

    def status_json(self, data_dir, env=None):
        result = self.cli("status", "-data", data_dir, "-json", env=env)
        self.assertIn(result.rc, (0, 3), result)
        try:
            status = json.loads(result.out)
        except ValueError:
            self.fail("status -json printed no JSON: %r" % result)
        self.assertIsInstance(status, dict, result)
        return result.rc, status

    def stop_node(self, data_dir, timeout=5):
        result = self.cli("stop", "-data", data_dir, "-timeout", str(timeout))
        self.assertEqual(result.rc, 0, result)
        return result

    # ---- files and processes ----

    @staticmethod
    def pid_file(data_dir):
        return os.path.join(data_dir, "node.pid")

    @staticmethod
    def status_file(data_dir):
        return os.path.join(data_dir, "node.status")

    @staticmethod
    def log_file(data_dir):
        return os.path.join(data_dir, "logs", "node.log")

    def read_pid_file(self, data_dir):
        text = read_text(self.pid_file(data_dir)).strip()
        self.assertRegex(text, r"^\d+$", "node.pid content")
        return int(text)

    def assert_node_gone(self, data_dir, pid=None, timeout=5.0):
        """No node process for this data dir (and pid, if given, dead); no PID/status file."""
        wait_until(lambda: not node_pids(data_dir), timeout,
                   message=lambda: "no agentnetwork process for %s (left: %s)" % (
                       data_dir, node_pids(data_dir)))
        if pid:
            wait_until(lambda: not process_alive(pid), timeout, message="PID %d to exit" % pid)
        self.assertFalse(os.path.exists(self.pid_file(data_dir)), "node.pid left behind")
        self.assertFalse(os.path.exists(self.status_file(data_dir)), "node.status left behind")

    def assert_usage_error(self, result, *needles):
        """Exit 2 with a one-line error on stderr naming every needle."""
        self.assertEqual(result.rc, 2, result)
        lines = result.err.strip().splitlines()
        self.assertEqual(len(lines), 1, "expected a one-line error: %r" % result)
        for needle in needles:
            self.assertIn(needle, lines[0], result)
        return lines[0]
