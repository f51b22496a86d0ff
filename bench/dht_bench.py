#!/usr/bin/env python3
"""Kademlia DHT benchmark: a 21-node loopback network of agentnetwork nodes next to a 21-node
network of js-libp2p nodes (@libp2p/kad-dht), measured in the same run. Prints a markdown
report; ratios are ours / js (below 1: ours is faster or smaller).

Each network is one bootstrap node and 20 normal nodes that are told only its address, every
node its own process (ours: `agentnetwork start`; js: bench/js/dht_network.mjs under node, one
process per node). All listen on 127.0.0.1.

  1. discovery: the 20 normal nodes are launched at once (ours: 20 concurrent `agentnetwork
     start`, each returning when its node is ready; js: 20 node processes, ready when they print
     their first line); then every node's connected-peer count is polled (ours: GetStatus
     peer_count; js: distinct peers of open connections) until each has >= --min-peers. Times
     from the launch. Bounded by --discovery-timeout.
  2. control-channel overhead: a trivial call at random nodes (ours GetStatus through gRPC on the
     node's api.sock; js a no-op line over the process's stdin/stdout), timed by this script.
  3. GetClosestPeers of random 32-byte keys at random nodes (the same node index and key on both
     sides, alternating which side goes first): round trip from this script; for js also the
     time inside the node process (performance.now() around dht.getClosestPeers).
  4. FindPeer of a peer the finder is not connected to: Disconnect first (ours: the Disconnect
     RPC; js: node.hangUp), then the lookup (ours: FindPeer RPC, which runs the whole lookup;
     js: dht.findPeer with useCache false, run to the end of its query; the time to its first
     answer naming the peer is given beside it). Hops: ours' lookup_hops; for js the same
     definition computed from the query's events (routing-table peers depth 0, a peer learned
     from a depth-d answer depth d+1; the largest depth among the k closest that answered).
  5. idle RSS (VmRSS) of every node process after discovery and --settle seconds.

With --sparse (default on; --no-sparse skips it) everything is repeated with the 20 normal nodes
limited in connections: ours `-conn-low-water 4 -conn-high-water 8` (the connection manager
closes down to 4 above 8, sparing connections younger than its 20 s grace period), js
`connectionManager.maxConnections 8` (js-libp2p has no low-water mark). Discovery there waits for
--sparse-min-peers, then the script waits --sparse-settle seconds (past the grace period) so
that lookups run on a trimmed network, and reports the connection counts it sees.

Usage: bench/dht_bench.py [--build build] [--lookups 200] [--finds 100] [--no-sparse]
                          [--skip-js] [--seed N]
Needs: the node built with its Python gRPC modules (cmake --build BUILD --target agentnetwork
an_proto_python), Python grpcio + protobuf, node >= 20 with tests/interop/node_modules
(cd tests/interop && npm ci). Every loop is bounded in count and time; every process started
is stopped before the script exits (also on Ctrl-C or failure) and the temporary directories are
removed.
"""
import argparse
import json
import os
import platform
import random
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INTEROP = os.path.join(ROOT, "tests", "interop")
JS_NODE_SCRIPT = os.path.join(HERE, "js", "dht_network.mjs")
NORMAL_NODES = 20
LOOPBACK = "/ip4/127.0.0.1/tcp/0"
CALL_TIMEOUT = 35.0  # per DHT call (the js side aborts its query 5 s earlier); a lookup in a
                    # 21-node network takes milliseconds, this only bounds a stuck one

grpc = node_pb2 = node_pb2_grpc = None  # imported in main() once the build dir is known


def log(message):
    print(f"[dht_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- statistics -------------------------------------------------------------------------------

def median(values):
    return statistics.median(values) if values else float("nan")


def percentile(values, p):
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def ratio(a, b):
    if a != a or b != b or b == 0:  # NaN or zero
        return "-"
    return f"{a / b:.2f}x"


def fmt(value, spec="{:.2f}"):
    return "-" if value is None or value != value else spec.format(value)


# ---- /proc ------------------------------------------------------------------------------------

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def busy_fraction(seconds=1.0):
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values[:8]), values[3] + (values[4] if len(values) > 4 else 0)
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


# ---- our nodes --------------------------------------------------------------------------------

class OursNet:
    """21 agentnetwork daemons in data directories under `workdir`, one gRPC channel each."""

    def __init__(self, binary, workdir, tag):
        self.binary = binary
        self.workdir = workdir
        self.tag = tag
        self.dirs = []       # index 0: bootstrap
        self.ids = []
        self.addrs = []
        self.pids = []
        self.channels = []
        self.stubs = []

    def _data(self, index):
        return os.path.join(self.workdir, f"{self.tag}-ours-{index:02d}")

    def _launch(self, index, extra):
        data = self._data(index)
        os.makedirs(data, exist_ok=True)
        self.dirs.append(data)
        return subprocess.Popen([self.binary, "start", "-data", data, "-listen", LOOPBACK, *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def _attach(self, index):
        data = self.dirs[index]
        with open(os.path.join(data, "node.status")) as f:
            status = json.load(f)
        channel = grpc.insecure_channel(status["grpc"])
        stub = node_pb2_grpc.NodeStub(channel)
        answer = stub.GetStatus(node_pb2.GetStatusRequest(), timeout=10)
        self.channels.append(channel)
        self.stubs.append(stub)
        self.ids.append(answer.peer_id)
        self.addrs.append(answer.listen_addrs[0])
        self.pids.append(answer.pid)

    @staticmethod
    def _wait_started(procs, what):
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise RuntimeError(f"{what}: `start` did not return within 30 s")
            if proc.returncode != 0:
                raise RuntimeError(f"{what}: start failed ({proc.returncode}): "
                                   f"{(out + err).decode(errors='replace')[-600:]}")

    def start_bootstrap(self):
        self._wait_started([self._launch(0, ["-role", "bootstrap"])], "ours bootstrap")
        self._attach(0)

    def launch_normals(self, extra):
        """Starts the 20 normal nodes concurrently; returns when every `start` returned."""
        procs = [self._launch(i, ["-bootstrap", self.addrs[0], *extra])
                 for i in range(1, NORMAL_NODES + 1)]
        self._wait_started(procs, "ours normal node")
        for i in range(1, NORMAL_NODES + 1):
            self._attach(i)

    def peer_counts(self, indices):
        return [self.stubs[i].GetStatus(node_pb2.GetStatusRequest(), timeout=10).peer_count
                for i in indices]

    def noop(self, index):
        started = time.perf_counter()
        self.stubs[index].GetStatus(node_pb2.GetStatusRequest(), timeout=10)
        return (time.perf_counter() - started) * 1000

    def closest(self, index, key):
        started = time.perf_counter()
        try:
            answer = self.stubs[index].GetClosestPeers(node_pb2.GetClosestPeersRequest(key=key),
                                                       timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            return {"rtt": (time.perf_counter() - started) * 1000,
                    "error": f"{error.code().name}: {error.details()}"}
        return {"rtt": (time.perf_counter() - started) * 1000, "count": len(answer.peer_ids)}

    def connected(self, index, peer_index):
        peers = self.stubs[index].ListPeers(node_pb2.ListPeersRequest(), timeout=10).peers
        return any(p.peer_id == self.ids[peer_index] for p in peers)

    def disconnect(self, index, peer_index):
        try:
            self.stubs[index].Disconnect(node_pb2.DisconnectRequest(peer_id=self.ids[peer_index]),
                                         timeout=15)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
        return self.connected(index, peer_index)

    def find(self, index, peer_index):
        started = time.perf_counter()
        try:
            answer = self.stubs[index].FindPeer(
                node_pb2.FindPeerRequest(peer_id=self.ids[peer_index]), timeout=CALL_TIMEOUT)
        except grpc.RpcError as error:
            return {"rtt": (time.perf_counter() - started) * 1000, "found": False,
                    "error": f"{error.code().name}: {error.details()}"}
        rtt = (time.perf_counter() - started) * 1000
        return {"rtt": rtt, "found": bool(answer.addresses), "hops": answer.lookup_hops,
                "through_dht": answer.found_through_dht, "connected": answer.connected}

    def rss(self):
        return [rss_kib(pid) for pid in self.pids]

    def cpu(self):
        return [cpu_seconds(pid) for pid in self.pids]

    def stop(self):
        for channel in self.channels:
            channel.close()
        self.channels, self.stubs = [], []
        procs = []
        for data in self.dirs:
            if os.path.exists(os.path.join(data, "node.pid")):
                procs.append(subprocess.Popen([self.binary, "stop", "-data", data, "-timeout", "5"],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.dirs = []


# ---- js nodes ---------------------------------------------------------------------------------

class JsNode:
    """One dht_network.mjs process: stdin kept open (EOF stops it), stdout read line by line."""

    def __init__(self, cmd, cwd, stderr_path):
        self.stderr_path = stderr_path
        self.stderr = open(stderr_path, "wb")
        self.popen = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self.stderr)
        self.pid = self.popen.pid
        self.buffer = b""
        self.next_id = 0
        self.peer_id = None
        self.addr = None

    def read_json(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.popen.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"js node {self.pid}: no answer within {timeout} s{self.tail()}")
            with selectors.DefaultSelector() as selector:
                selector.register(fd, selectors.EVENT_READ)
                if not selector.select(left):
                    continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"js node {self.pid} exited ({self.popen.poll()}){self.tail()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def send(self, cmd, **fields):
        self.next_id += 1
        self.popen.stdin.write((json.dumps({"id": self.next_id, "cmd": cmd, **fields}) + "\n")
                               .encode())
        self.popen.stdin.flush()
        return self.next_id

    def receive(self, expected_id, timeout=CALL_TIMEOUT):
        while True:
            answer = self.read_json(timeout)
            if answer.get("id") == expected_id:
                return answer

    def call(self, cmd, timeout=CALL_TIMEOUT, **fields):
        return self.receive(self.send(cmd, timeout=timeout - 5, **fields), timeout)

    def tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                text = f.read()[-600:].decode(errors="replace").strip()
            return f"\n  stderr: {text}" if text else ""
        except OSError:
            return ""

    def stop(self):
        if self.popen.poll() is None:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(3)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(3)
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.stderr.close()


class JsNet:
    def __init__(self, node_bin, workdir, tag):
        self.node_bin = node_bin
        self.workdir = workdir
        self.tag = tag
        # ES modules resolve packages next to the importing file: run a copy of the script from a
        # directory whose node_modules is tests/interop's.
        self.rundir = os.path.join(workdir, "js-run")
        if not os.path.isdir(self.rundir):
            os.makedirs(self.rundir)
            shutil.copy(JS_NODE_SCRIPT, os.path.join(self.rundir, "dht_network.mjs"))
            os.symlink(os.path.join(INTEROP, "node_modules"),
                       os.path.join(self.rundir, "node_modules"))
        self.nodes = []

    @property
    def ids(self):
        return [n.peer_id for n in self.nodes]

    def _launch(self, args):
        cmd = [self.node_bin, "--import", os.path.join(INTEROP, "polyfill.mjs"),
               "dht_network.mjs", "--listen", LOOPBACK, *args]
        node = JsNode(cmd, self.rundir, os.path.join(
            self.workdir, f"{self.tag}-js-{len(self.nodes):02d}.err"))
        self.nodes.append(node)
        return node

    @staticmethod
    def _ready(node):
        hello = node.read_json(60)
        if not hello.get("ready"):
            raise RuntimeError(f"js node: {hello}{node.tail()}")
        node.peer_id, node.addr = hello["peer_id"], hello["addrs"][0]

    def start_bootstrap(self):
        self._ready(self._launch([]))

    def launch_normals(self, extra):
        fresh = [self._launch(["--bootstrap", self.nodes[0].addr, *extra])
                 for _ in range(NORMAL_NODES)]
        for node in fresh:
            self._ready(node)

    def peer_counts(self, indices, what="peers"):
        sent = [(self.nodes[i], self.nodes[i].send("info")) for i in indices]
        return [node.receive(ident, 30)[what] for node, ident in sent]

    def noop(self, index):
        started = time.perf_counter()
        self.nodes[index].call("noop", timeout=10)
        return (time.perf_counter() - started) * 1000

    def closest(self, index, key):
        started = time.perf_counter()
        answer = self.nodes[index].call("closest", key_hex=key.hex())
        rtt = (time.perf_counter() - started) * 1000
        if not answer.get("ok"):
            return {"rtt": rtt, "error": answer.get("error")}
        return {"rtt": rtt, "inside": answer["ms"], "count": answer["count"],
                "hops": answer["hops"], "queries": answer["queries"]}

    def disconnect(self, index, peer_index):
        answer = self.nodes[index].call("disconnect", timeout=20, peer=self.ids[peer_index])
        if not answer.get("ok"):
            raise RuntimeError(f"js disconnect: {answer.get('error')}")
        return answer["connected"]

    def find(self, index, peer_index):
        started = time.perf_counter()
        answer = self.nodes[index].call("find", peer=self.ids[peer_index])
        rtt = (time.perf_counter() - started) * 1000
        if not answer.get("ok"):
            return {"rtt": rtt, "found": False, "error": answer.get("error")}
        return {"rtt": rtt, "inside": answer["ms"], "first": answer["ms_first"],
                "found": answer["found"], "hops": answer["hops"], "queries": answer["queries"],
                "connected": answer["connected"]}

    def rss(self):
        return [rss_kib(n.pid) for n in self.nodes]

    def cpu(self):
        return [cpu_seconds(n.pid) for n in self.nodes]

    def failed_bootstrap_dials(self):
        count = 0
        for node in self.nodes:
            try:
                with open(node.stderr_path, "rb") as f:
                    count += f.read().count(b"bootstrap dial: ")
            except OSError:
                pass
        return count

    def stop(self):
        for node in self.nodes:
            try:
                node.popen.stdin.close()  # all at once: they shut down in parallel
            except OSError:
                pass
        for node in self.nodes:
            try:
                node.stop()
            except Exception as error:  # keep stopping the others
                log(f"stopping js node {node.pid}: {error}")
        self.nodes = []


# ---- phases -----------------------------------------------------------------------------------

def discovery(net, extra, min_peers, timeout):
    """Launches the 20 normal nodes; per node the time from the launch until it had min_peers
    connected peers (None: not within timeout)."""
    begin = time.monotonic()
    net.launch_normals(extra)
    ready = time.monotonic() - begin
    reached = [None] * NORMAL_NODES
    counts = []
    indices = list(range(1, NORMAL_NODES + 1))
    while time.monotonic() - begin < timeout:
        counts = net.peer_counts(indices)
        now = time.monotonic() - begin
        for i, count in enumerate(counts):
            if reached[i] is None and count >= min_peers:
                reached[i] = now
        if all(r is not None for r in reached):
            break
        time.sleep(0.05)
    return {"ready": ready, "reached": reached, "counts": counts}


def interleaved(sides, count, seconds, rng, one):
    """Runs `one(side, iteration_arguments)` `count` times per side, alternating which side goes
    first; stops early after `seconds`."""
    results = {name: [] for name in sides}
    begin = time.monotonic()
    for n in range(count):
        if time.monotonic() - begin > seconds:
            log(f"  time bound reached after {n} iterations")
            break
        arguments = one.prepare(rng)
        order = list(sides.items())
        if n % 2:
            order.reverse()
        for name, net in order:
            results[name].append(one.run(net, arguments))
    return results


class Noop:
    @staticmethod
    def prepare(rng):
        return rng.randrange(NORMAL_NODES + 1)

    @staticmethod
    def run(net, index):
        return net.noop(index)


class Closest:
    @staticmethod
    def prepare(rng):
        return rng.randrange(NORMAL_NODES + 1), rng.randbytes(32)

    @staticmethod
    def run(net, arguments):
        return net.closest(*arguments)


class Find:
    @staticmethod
    def prepare(rng):
        finder, target = rng.sample(range(1, NORMAL_NODES + 1), 2)
        return finder, target

    @staticmethod
    def run(net, arguments):
        finder, target = arguments
        still = net.disconnect(finder, target)
        result = net.find(finder, target)
        result["connected_before"] = still
        return result


def run_mode(args, mode, binary, node_bin, workdir, rng):
    sparse = mode == "sparse"
    ours_extra = ["-conn-low-water", "4", "-conn-high-water", "8"] if sparse else []
    js_extra = ["--max-connections", "8"] if sparse else []
    min_peers = args.sparse_min_peers if sparse else args.min_peers
    nets = {"ours": OursNet(binary, workdir, mode)}
    if node_bin:
        nets["js"] = JsNet(node_bin, workdir, mode)
    result = {"mode": mode, "min_peers": min_peers}
    try:
        for name, net in nets.items():
            log(f"{mode}: {name}: bootstrap node, then 20 normal nodes")
            net.start_bootstrap()
            time.sleep(0.5)
            result[f"discovery_{name}"] = discovery(net, ours_extra if name == "ours" else js_extra,
                                                    min_peers, args.discovery_timeout)
            time.sleep(0.5)
        settle = args.sparse_settle if sparse else args.settle
        log(f"{mode}: settling {settle:.0f} s, then RSS")
        cpu_before = {name: net.cpu() for name, net in nets.items()}
        time.sleep(settle)
        for name, net in nets.items():
            used = [b - a for a, b in zip(cpu_before[name], net.cpu())
                    if a is not None and b is not None]
            result[f"idle_cpu_{name}"] = sum(used) / settle
            result["settle"] = settle
            result[f"rss_{name}"] = net.rss()
            result[f"counts_{name}"] = net.peer_counts(range(NORMAL_NODES + 1))
        log(f"{mode}: control-channel overhead, {args.noops} calls each")
        result["noop"] = interleaved(nets, args.noops, 60, rng, Noop)
        log(f"{mode}: GetClosestPeers, {args.lookups} each")
        result["closest"] = interleaved(nets, args.lookups, args.phase_seconds, rng, Closest)
        log(f"{mode}: FindPeer after Disconnect, {args.finds} each")
        result["find"] = interleaved(nets, args.finds, args.phase_seconds, rng, Find)
        for name, net in nets.items():
            result[f"counts_after_{name}"] = net.peer_counts(range(NORMAL_NODES + 1))
        if "js" in nets:
            result["js_failed_bootstrap_dials"] = nets["js"].failed_bootstrap_dials()
            result["js_routing_tables"] = nets["js"].peer_counts(range(NORMAL_NODES + 1),
                                                                 "routing_table")
    finally:
        for name, net in nets.items():
            log(f"{mode}: stopping {name}")
            net.stop()
    return result


# ---- report -----------------------------------------------------------------------------------

def dist(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{min(values)}–{max(values)} (median {median(values):g})"


def report_mode(r, w, has_js):
    sides = ["ours", "js"] if has_js else ["ours"]
    label = {"ours": "agentnetwork", "js": "js-libp2p"}
    mode_text = ("full mesh (default connection limits)" if r["mode"] == "full"
                 else "sparse (ours -conn-low-water 4 -conn-high-water 8, js maxConnections 8)")
    w(f"## {mode_text}\n")

    w(f"### Discovery: 20 normal nodes launched at once, until each has ≥ {r['min_peers']} "
      f"connected peers\n")
    w("| | all 20 ready (launch returned) s | per node: median s | p90 s | all 20 reached s | "
      "nodes reached | peers per node then |")
    w("|---|---:|---:|---:|---:|---:|---|")
    figures = {}
    for side in sides:
        d = r[f"discovery_{side}"]
        got = [t for t in d["reached"] if t is not None]
        everyone = max(got) if len(got) == NORMAL_NODES else float("nan")
        figures[side] = (d["ready"], median(got), percentile(got, 90), everyone)
        w(f"| {label[side]} | {d['ready']:.2f} | {fmt(median(got))} | "
          f"{fmt(percentile(got, 90))} | {fmt(everyone)} | {len(got)}/{NORMAL_NODES} | "
          f"{dist(d['counts'])} |")
    if has_js:
        o, j = figures["ours"], figures["js"]
        w(f"| ours/js | {ratio(o[0], j[0])} | {ratio(o[1], j[1])} | {ratio(o[2], j[2])} | "
          f"{ratio(o[3], j[3])} | | |")
    w("")
    w("Connected peers per node (all 21) after settling, and after the lookups below:\n")
    w("| | after settling | after the lookups |")
    w("|---|---|---|")
    for side in sides:
        w(f"| {label[side]} | {dist(r[f'counts_{side}'])} | {dist(r[f'counts_after_{side}'])} |")
    w("")
    if r.get("js_failed_bootstrap_dials"):
        w(f"js: {r['js_failed_bootstrap_dials']} bootstrap dials failed or repeated after the "
          f"connection closed (each node checks every second for its first minute).\n")
    if "js_routing_tables" in r:
        w(f"js routing-table sizes after the lookups: {dist(r['js_routing_tables'])} (ours are "
          f"not exposed by the API).\n")

    w("### Idle memory (VmRSS after discovery and settling)\n")
    w("| | bootstrap MiB | normal nodes: median MiB | min–max | sum of 21 MiB |")
    w("|---|---:|---:|---:|---:|")
    rss = {}
    for side in sides:
        values = r[f"rss_{side}"]
        normal = [v / 1024 for v in values[1:] if v]
        total = sum(v for v in values if v) / 1024
        rss[side] = (values[0] / 1024 if values[0] else float("nan"), median(normal), total)
        w(f"| {label[side]} | {fmt(rss[side][0], '{:.1f}')} | {fmt(median(normal), '{:.1f}')} | "
          f"{fmt(min(normal), '{:.1f}')}–{fmt(max(normal), '{:.1f}')} | {total:.0f} |")
    if has_js:
        w(f"| ours/js | {ratio(rss['ours'][0], rss['js'][0])} | "
          f"{ratio(rss['ours'][1], rss['js'][1])} | | {ratio(rss['ours'][2], rss['js'][2])} |")
    w("")
    w(f"CPU used by the 21 node processes together while settling ({r['settle']:.0f} s, no "
      f"calls): " + ", ".join(f"{label[side]} {r[f'idle_cpu_{side}'] * 100:.1f}% of one CPU"
                               for side in sides) + ".\n")

    w("### Lookups (ms; median and p90)\n")
    noop = r["noop"]
    closest = {side: [x for x in values if "error" not in x]
               for side, values in r["closest"].items()}
    closest_errors = {side: [x["error"] for x in values if "error" in x]
                      for side, values in r["closest"].items()}
    find = r["find"]
    rows = []

    def row(name, values_ours, values_js, note=""):
        mo, po = median(values_ours), percentile(values_ours, 90)
        mj, pj = (median(values_js), percentile(values_js, 90)) if values_js is not None \
            else (float("nan"), float("nan"))
        rows.append(f"| {name} | {fmt(mo)} | {fmt(po)} | {fmt(mj)} | {fmt(pj)} | "
                    f"{ratio(mo, mj)} | {ratio(po, pj)} | {note} |")

    js_noop = noop.get("js")
    row("trivial call (ours GetStatus via gRPC; js no-op line via stdin/stdout)", noop["ours"],
        js_noop, f"n = {len(noop['ours'])}")
    c_ours = [x["rtt"] for x in closest["ours"]]
    c_js = [x["rtt"] for x in closest["js"]] if has_js else None
    row("GetClosestPeers, round trip from the script", c_ours, c_js, f"n = {len(c_ours)}")
    if has_js:
        c_js_in = [x["inside"] for x in closest["js"]]
        c_ours_net = [max(0.0, v - median(noop["ours"])) for v in c_ours]
        row("GetClosestPeers, lookup alone (ours: round trip − median GetStatus; js: inside "
            "the process)", c_ours_net, c_js_in)
    f_ours = [x for x in find["ours"] if x.get("found") and not x.get("connected_before")]
    f_js = [x for x in find.get("js", []) if x.get("found") and not x.get("connected_before")]
    row("FindPeer after Disconnect, round trip (whole lookup)", [x["rtt"] for x in f_ours],
        [x["rtt"] for x in f_js] if has_js else None, f"n = {len(f_ours)}")
    if has_js:
        row("FindPeer, lookup alone (ours: round trip − median GetStatus; js: inside the "
            "process, whole query)", [max(0.0, x["rtt"] - median(noop["ours"])) for x in f_ours],
            [x["inside"] for x in f_js])
        rows.append(f"| js FindPeer: first answer naming the peer (inside the process) | | | "
                    f"{fmt(median([x['first'] for x in f_js]))} | "
                    f"{fmt(percentile([x['first'] for x in f_js], 90))} | | | |")
    w("| | ours median | ours p90 | js median | js p90 | ratio median | ratio p90 | |")
    w("|---|---:|---:|---:|---:|---:|---:|---|")
    for line in rows:
        w(line)
    w("")

    w("Lookup details:\n")
    w("| | ours | js |")
    w("|---|---|---|")
    w(f"| GetClosestPeers: peers returned | {dist([x['count'] for x in closest['ours']])} | "
      f"{dist([x['count'] for x in closest['js']]) if has_js else '-'} |")
    w(f"| GetClosestPeers: hops | - (not in the API) | "
      f"{dist([x['hops'] for x in closest['js']]) if has_js else '-'} |")
    w(f"| GetClosestPeers: peers queried | - (not in the API) | "
      f"{dist([x['queries'] for x in closest['js']]) if has_js else '-'} |")
    for side in sides:
        if closest_errors[side]:
            w(f"| GetClosestPeers failures ({label[side]}) | {len(closest_errors[side])}/"
              f"{len(r['closest'][side])}: {'; '.join(sorted(set(closest_errors[side]))[:3])} | |")
    for side in sides:
        found = [x for x in find[side] if x.get("found")]
        errors = [x.get("error") for x in find[side] if not x.get("found")]
        reconnected = sum(1 for x in find[side] if x.get("connected_before"))
        hops = dist([x.get("hops") for x in found])
        extra = ""
        if side == "ours":
            through = sum(1 for x in found if x.get("through_dht"))
            extra = f"; found_through_dht {through}/{len(found)}"
        else:
            extra = f"; peers queried {dist([x.get('queries') for x in found])}"
        connected_after = sum(1 for x in found if x.get("connected"))
        w(f"| FindPeer ({label[side]}) | found {len(found)}/{len(find[side])}; hops {hops}"
          f"{extra}; connected afterwards {connected_after}/{len(found)}; still connected after "
          f"Disconnect (excluded from the times) {reconnected}"
          f"{'; errors: ' + '; '.join(sorted(set(map(str, errors)))[:3]) if errors else ''} | |")
    w("")


def report(args, results, binary, node_bin, elapsed, load_before, load_after):
    out = []
    w = out.append
    has_js = node_bin is not None
    w("# Kademlia DHT benchmark: agentnetwork vs js-libp2p, 21 nodes on loopback\n")
    w(f"One bootstrap node and 20 normal nodes per network, each node its own process; ratios "
      f"are ours / js in the same run (below 1: ours faster / smaller). Total time "
      f"{elapsed:.0f} s, seed {args.seed}.\n")
    w("| | |\n|---|---|")
    w(f"| machine | {cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()} |")
    w(f"| ours | `{os.path.relpath(binary, ROOT)}` ({build_type(binary)}); lookups through "
      f"the gRPC API on each node's api.sock (Python grpcio {grpc.__version__}) |")
    w(f"| js | {js_versions() if has_js else 'skipped'}"
      f"{' on node ' + node_version(node_bin) if has_js else ''}; one process per node "
      f"(bench/js/dht_network.mjs), driven by JSON lines on stdin/stdout |")
    w(f"| other load | CPUs {load_before * 100:.0f}% busy before the run, {load_after * 100:.0f}%"
      f" after |")
    w("")
    for r in results:
        report_mode(r, w, has_js)
    return "\n".join(out)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def build_type(binary):
    cache = os.path.join(os.path.dirname(os.path.dirname(binary)), "CMakeCache.txt")
    try:
        with open(cache) as f:
            match = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", f.read(), re.M)
            if match:
                return f"CMAKE_BUILD_TYPE={match.group(1)}"
    except OSError:
        pass
    return "build type unknown"


def js_versions():
    parts = []
    for name in ["libp2p", "@libp2p/kad-dht", "@libp2p/tcp", "@chainsafe/libp2p-noise",
                 "@chainsafe/libp2p-yamux"]:
        try:
            with open(os.path.join(INTEROP, "node_modules", name, "package.json")) as f:
                parts.append(f"{name} {json.load(f)['version']}")
        except (OSError, ValueError, KeyError):
            pass
    return ", ".join(parts)


def node_version(node):
    try:
        return subprocess.run([node, "--version"], stdout=subprocess.PIPE,
                              timeout=10).stdout.decode().strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def main():
    global grpc, node_pb2, node_pb2_grpc
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"),
                        help="build directory (default: build/ in the repository)")
    parser.add_argument("--binary", help="agentnetwork binary (default BUILD/src/agentnetwork)")
    parser.add_argument("--lookups", type=int, default=200, help="GetClosestPeers per side")
    parser.add_argument("--finds", type=int, default=100, help="FindPeer per side")
    parser.add_argument("--noops", type=int, default=200, help="trivial calls per side")
    parser.add_argument("--min-peers", type=int, default=10)
    parser.add_argument("--sparse-min-peers", type=int, default=4)
    parser.add_argument("--discovery-timeout", type=float, default=90.0)
    parser.add_argument("--settle", type=float, default=20.0,
                        help="seconds between discovery and RSS / the lookups (full mesh)")
    parser.add_argument("--sparse-settle", type=float, default=25.0,
                        help="seconds before the sparse lookups (past the 20 s grace period)")
    parser.add_argument("--phase-seconds", type=float, default=240.0,
                        help="time bound of each lookup phase")
    parser.add_argument("--no-sparse", action="store_true", help="only the full-mesh network")
    parser.add_argument("--only-sparse", action="store_true")
    parser.add_argument("--skip-js", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    args.lookups = max(1, min(args.lookups, 5000))
    args.finds = max(1, min(args.finds, 2000))
    args.noops = max(1, min(args.noops, 5000))
    args.discovery_timeout = max(1.0, min(args.discovery_timeout, 600.0))
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    rng = random.Random(args.seed)

    build = os.path.abspath(args.build)
    binary = os.path.abspath(args.binary or os.path.join(build, "src", "agentnetwork"))
    if not os.access(binary, os.X_OK):
        sys.exit(f"no agentnetwork at {binary}: cmake --build {args.build} --target agentnetwork")
    sys.path.insert(0, os.path.join(build, "proto", "python"))
    try:
        import grpc as grpc_module
        from agentnetwork.v1 import node_pb2 as pb2, node_pb2_grpc as pb2_grpc
    except ImportError as error:
        sys.exit(f"{error}: needs grpcio and the generated modules "
                 f"(cmake --build {args.build} --target an_proto_python)")
    grpc, node_pb2, node_pb2_grpc = grpc_module, pb2, pb2_grpc

    node_bin = None
    if not args.skip_js:
        node_bin = shutil.which("node")
        if node_bin is None or not os.path.isdir(os.path.join(INTEROP, "node_modules")):
            sys.exit("node or tests/interop/node_modules missing (cd tests/interop && npm ci), "
                     "or --skip-js")

    modes = ["sparse"] if args.only_sparse else (["full"] if args.no_sparse else
                                                 ["full", "sparse"])
    # Short data dirs: the API socket path must fit sun_path.
    workdir = tempfile.mkdtemp(prefix="an-dht-")
    load_before = busy_fraction()
    if load_before > 0.10:
        log(f"warning: the CPUs are {load_before * 100:.0f}% busy with other work")
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    begin = time.monotonic()
    results = []
    try:
        for mode in modes:
            results.append(run_mode(args, mode, binary, node_bin, workdir, rng))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - begin
    load_after = busy_fraction()
    print(report(args, results, binary, node_bin, elapsed, load_before, load_after))


if __name__ == "__main__":
    main()
