"""Helpers for the hostile-peer suite and the soak benchmark: the js peers of hostile_peer.mjs as
child processes, the node's memory and descriptors from /proc, stalled raw TCP handshakes.

The node itself is started by tests/functional/harness.py (a real `agentnetwork` in a temporary
data directory); AGENTNETWORK_BIN names the binary. The js side needs `npm ci` in this directory
(run.sh does it). Only loopback addresses are used; every loop is bounded in count and time.
"""

import errno
import itertools
import json
import os
import queue
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "functional"))
import harness  # noqa: E402  (the functional tests' node helpers)

MIB = 1024 * 1024
KIB = 1024
NODE = os.environ.get("NODE", "node")
PEER_SCRIPT = os.path.join(HERE, "hostile_peer.mjs")


def log(message):
    sys.stderr.write("[hostile %s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def js_ready():
    """None when the js side can run, else why not."""
    if not os.path.isdir(os.path.join(HERE, "node_modules")):
        return "no node_modules in %s: run `npm ci` there (run.sh does)" % HERE
    return None


# ---- the node's resources, from /proc ----

def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for PID %d" % pid)


def cpu_seconds(pid):
    """User + system CPU time of the process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def tcp_connections_of(pid):
    """The number of sockets the process holds (TCP listeners and connections, the API socket)."""
    count = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def mib(n):
    return "%.1f MiB" % (n / MIB)


# ---- js peers ----

class JsPeer:
    """hostile_peer.mjs MODE TARGET ... as a child process; its stdout JSON lines are collected
    by a thread (`lines`, and a queue for waiting). stdin stays open: closing it tells the long
    running modes to stop."""

    def __init__(self, mode, target, *args, cwd=HERE, stderr=None, quiet=True, source=None):
        env = dict(os.environ)
        if quiet:
            env["PEER_QUIET"] = "1"
        argv = [NODE, "--import", "./polyfill.mjs", PEER_SCRIPT, mode, target] + [str(a) for a in args]
        # Attackers come from their own loopback addresses, the honest peer from 127.0.0.1: to the
        # node they are different hosts, as on the Internet, and the per-address limits meant
        # for one attacker do not fall on the honest peer or on the next attacker.
        if source is None and mode != "honest":
            source = next_attacker_source()
        if source is not None:
            argv += ["--source", source]
        self.mode = mode
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=stderr)
        self.lines = []
        self._queue = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                obj = json.loads(raw)
            except ValueError:
                obj = {"unparsed": raw.decode("utf-8", "replace")}
            if isinstance(obj, dict):
                obj.setdefault("_received", time.time())
            self.lines.append(obj)
            self._queue.put(obj)
        self._queue.put(None)

    def next(self, timeout, predicate=lambda obj: True, what="a line"):
        """The next line matching predicate; AssertionError on timeout, exit or an error line."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("js %s: no %s within %.0fs" % (self.mode, what, timeout))
            try:
                obj = self._queue.get(timeout=left)
            except queue.Empty:
                continue
            if obj is None:
                raise AssertionError("js %s exited (rc %s) before %s" % (
                    self.mode, self.proc.poll(), what))
            if "error" in obj and len(obj) <= 2:
                raise AssertionError("js %s failed: %s" % (self.mode, obj["error"]))
            if predicate(obj):
                return obj

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def finish(self, timeout=30):
        """Closes stdin and waits for the process; kills it after `timeout`."""
        self.close_stdin()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def run_js(mode, target, *args, timeout=300):
    """Runs a one-shot mode to the end; returns its last JSON line (its summary)."""
    peer = JsPeer(mode, target, *args)
    try:
        peer.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        peer.kill()
        raise AssertionError("js %s did not finish within %ss" % (mode, timeout))
    peer._reader.join(timeout=10)
    if not peer.lines:
        raise AssertionError("js %s printed nothing (rc %s)" % (mode, peer.proc.returncode))
    last = peer.lines[-1]
    if "error" in last and len(last) <= 2:
        raise AssertionError("js %s failed: %s" % (mode, last["error"]))
    return last


def run_js_split(mode, target, count, *args, processes=2, timeout=300):
    """A counted mode (sybils, oversized) in `processes` js processes at once, `count` shared
    between them (js-libp2p does its crypto on one thread: two processes use two cores).
    Returns one summary: the counts added up, the longest time, the errors of all."""
    shares = [count // processes + (1 if i < count % processes else 0) for i in range(processes)]
    peers = [JsPeer(mode, target, "--count", n, *args) for n in shares if n]
    deadline = time.monotonic() + timeout
    summaries = []
    try:
        for peer in peers:
            try:
                peer.proc.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError("js %s did not finish within %ss" % (mode, timeout))
            peer._reader.join(timeout=10)
            if not peer.lines or ("error" in peer.lines[-1] and len(peer.lines[-1]) <= 2):
                raise AssertionError("js %s failed: %s" % (mode, peer.lines[-1:] or "no output"))
            summaries.append(peer.lines[-1])
    finally:
        for peer in peers:
            peer.kill()
    merged = dict(summaries[0])
    for key in ("count", "attempted", "ok", "failed"):
        merged[key] = sum(s.get(key, 0) for s in summaries)
    merged["seconds"] = max(s.get("seconds", 0) for s in summaries)
    merged["errors"] = [e for s in summaries for e in s.get("errors", [])]
    if "variants" in merged:
        merged["variants"] = {k: sum(s["variants"].get(k, 0) for s in summaries)
                              for k in merged["variants"]}
    merged["processes"] = len(summaries)
    return merged


class HonestPeer(JsPeer):
    """The honest peer: pings every `interval_ms` on its connection (and optionally dials fresh
    connections, runs DHT lookups). Results are the `ping` / `fresh` / `dht` lines, each with
    its wall-clock start `t` in milliseconds."""

    def __init__(self, target, interval_ms=200, ping_timeout_ms=5000, fresh_every_ms=None,
                 fresh_timeout_ms=10000, dht_every_ms=None, max_seconds=3600, **kwargs):
        args = ["--interval-ms", interval_ms, "--ping-timeout-ms", ping_timeout_ms,
                "--max-seconds", max_seconds]
        if fresh_every_ms:
            args += ["--fresh-every-ms", fresh_every_ms, "--fresh-timeout-ms", fresh_timeout_ms]
        if dht_every_ms:
            args += ["--dht-every-ms", dht_every_ms]
        super().__init__("honest", target, *args, **kwargs)
        try:
            self.ready = self.next(60, lambda o: o.get("ready"), "the honest peer's first ping")
        except AssertionError:
            self.kill()
            raise

    def results(self, kind="ping", since=None, until=None):
        """Lines of one kind whose start falls in [since, until] (seconds since the epoch)."""
        out = []
        for obj in list(self.lines):
            if obj.get("kind") != kind:
                continue
            t = obj.get("t", 0) / 1000.0
            if since is not None and t < since:
                continue
            if until is not None and t > until:
                continue
            out.append(obj)
        return out

    @staticmethod
    def summary(results, key="rtt_ms"):
        ok = [r for r in results if r.get("ok")]
        values = [r.get(key, r.get("ms")) for r in ok]
        return {
            "count": len(results),
            "ok": len(ok),
            "failed": len(results) - len(ok),
            "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99),
            "max_ms": max(values) if values else None,
            "errors": sorted({r.get("error", "") for r in results if not r.get("ok")})[:5],
        }


# ---- stalled handshakes: raw TCP from another loopback address ----

# Half of a multistream-select header: the length varint says 19 bytes follow, 17 do.
HALF_MULTISTREAM_HEADER = b"\x13/multistream/1.0"


class StalledHandshakes:
    """`count` TCP connections from `source` to the node's port, each sending half a multistream
    header and then nothing. A thread watches them: a connection the node closes (EOF or reset)
    gets its lifetime recorded, and while `sustain` is on it is opened again after `backoff`
    seconds, so that `count` stalled handshakes stay in flight. Every socket is closed by
    `stop()` at the latest."""

    def __init__(self, port, count=400, source="127.0.0.2", host="127.0.0.1", backoff=1.0):
        self.port, self.count, self.source, self.host, self.backoff = port, count, source, host, backoff
        self.sustain = True
        self.opened = 0
        self.open_failures = 0
        self.lifetimes = []        # seconds from connect to the node's close, per connection
        self.open_since = {}       # socket -> monotonic time of its connect
        self._reopen_at = []       # monotonic times at which to open a replacement
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        for _ in range(self.count):
            self._open()
        self._thread.start()
        return self

    def _open(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((self.source, 0))
            s.settimeout(5)
            s.connect((self.host, self.port))
            s.sendall(HALF_MULTISTREAM_HEADER)
            s.setblocking(False)
        except OSError:
            s.close()
            with self._lock:
                self.open_failures += 1
                if self.sustain:
                    self._reopen_at.append(time.monotonic() + self.backoff)
            return
        with self._lock:
            self.opened += 1
            self.open_since[s] = time.monotonic()
        self._selector.register(s, selectors.EVENT_READ)

    def _closed_by_node(self, s):
        self._selector.unregister(s)
        with self._lock:
            started = self.open_since.pop(s)
            self.lifetimes.append(time.monotonic() - started)
            if self.sustain:
                self._reopen_at.append(time.monotonic() + self.backoff)
        s.close()

    def _run(self):
        while not self._stop.is_set():
            events = self._selector.select(timeout=0.1)
            for key, _ in events:
                s = key.fileobj
                try:
                    data = s.recv(4096)  # the node's own header may come first
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    self._closed_by_node(s)
            now = time.monotonic()
            with self._lock:
                due = [t for t in self._reopen_at if t <= now] if self.sustain else []
                self._reopen_at = [t for t in self._reopen_at if t > now] if self.sustain else []
            for _ in due:
                self._open()

    def stop_sustaining(self):
        with self._lock:
            self.sustain = False
            self._reopen_at = []

    def still_open(self):
        with self._lock:
            return len(self.open_since)

    def oldest_open_age(self):
        with self._lock:
            if not self.open_since:
                return 0.0
            return time.monotonic() - min(self.open_since.values())

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for s in list(self.open_since):
                try:
                    s.close()
                except OSError:
                    pass
            self.open_since.clear()


_attacker_hosts = itertools.count()


def next_attacker_source():
    """127.0.0.10, .11, ... .249, then round again; None where 127.0.0.x aliases do not work."""
    if not loopback_alias_usable("127.0.0.10"):
        return None
    return "127.0.0.%d" % (10 + next(_attacker_hosts) % 240)


def loopback_alias_usable(address="127.0.0.2"):
    """True when this machine routes `address` to lo (Linux does for all of 127/8)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((address, 0))
        return True
    except OSError as e:
        return e.errno not in (errno.EADDRNOTAVAIL,)


def median(values):
    return statistics.median(values) if values else None
