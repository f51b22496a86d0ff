#!/usr/bin/env python3
"""Control API benchmark: GetStatus under 50 concurrent clients while peers connect, the ping RTT
between two nodes meanwhile (does the network thread stall?), and `status` through the API.
Every figure is set beside a reference measured in the same run.

In temporary data directories it starts node A, node B and --extra-nodes more (all listening on
127.0.0.1), connects A to B through the Connect RPC, and a bare gRPC server of the same service
(`an-api-load baseline-server`, GetStatus answered with a copy of A's answer on gRPC's own
thread: what gRPC itself costs here). Then, with an-api-load (bench/api_load.cpp):

  1. ping A->B idle: --ping-count Ping calls (count=1), --ping-interval-ms apart; the RTT is the
     one node A measured on /ipfs/ping/1.0.0, so API queueing is excluded (reported apart as the
     whole call's time).
  2. ping A->B while the extra nodes churn: each one Connects to A, holds --hold-ms,
     Disconnects, pauses --pause-ms, again.
  3. --clients clients (each its own thread, channel and connection) call GetStatus on A for
     --seconds, while the churn and the ping go on: first paced (--paced-rate calls/s in all),
     then back to back: calls/s, errors by status code, latency p50/p99, the ping RTT, the CPU
     node A spent per call (all threads, and its network thread alone), and how much of the
     time A's network thread ran and waited for a CPU (/proc schedstat).
  4. the same load on A without churn, and on the baseline server (with the ping A->B running
     beside it: the RTT rise that comes from the CPUs being busy, not from node A's thread).
  5. one client for --single-seconds on A and on the baseline: the latency of a lone call.
  6. `agentnetwork status -data A` (a process that asks GetStatus) --status-runs times,
     interleaved with `agentnetwork version` (the same binary's start-up cost, no API call) and
     `true` (the floor of any process, as in lifecycle_bench.py).

Usage: bench/api_bench.py [--build build] [--binary PATH] [--api-load PATH] [--clients 50]
                          [--seconds 10] [--json-out FILE]
Needs the agentnetwork binary and an-api-load: cmake --build build --target agentnetwork an-api-load
Loopback and Unix sockets only; every node and process started is stopped before the script
exits, on failure too. About a minute with the defaults.
"""
import argparse
import json
import os
import platform
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
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"[api_bench] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ---- processes --------------------------------------------------------------------------------

class Tool:
    """An an-api-load run in the background: its last stdout line is its JSON result."""

    running = []

    def __init__(self, cmd, timeout):
        self.cmd = cmd
        self.timeout = timeout
        self.begin = time.monotonic()
        self.popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        Tool.running.append(self)

    def result(self):
        left = max(1.0, self.timeout - (time.monotonic() - self.begin))
        try:
            out, err = self.popen.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchError(f"no answer within {self.timeout:.0f}s: {' '.join(self.cmd)}")
        finally:
            if self in Tool.running:
                Tool.running.remove(self)
        lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
        if not lines:
            raise BenchError(f"no output (code {self.popen.returncode}) from {' '.join(self.cmd)}:"
                             f" {err.decode(errors='replace')[-800:]}")
        answer = json.loads(lines[-1])
        if self.popen.returncode != 0 or "error" in answer:
            why = answer.get("error", f"exit code {self.popen.returncode}")
            raise BenchError(f"{self.cmd[1]}: {why}")
        return answer

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()  # this PID only
            self.popen.wait(5)

    @classmethod
    def kill_all(cls):
        for tool in list(cls.running):
            try:
                tool.kill()
            except Exception as error:  # keep killing the others
                log(f"stopping {tool.cmd[1]}: {error}")
        cls.running.clear()


class BaselineServer:
    """an-api-load baseline-server; stops when its stdin closes."""

    def __init__(self, tool, socket_path, copy_from, workdir):
        self.stderr = open(os.path.join(workdir, "baseline.err"), "wb")
        self.endpoint = "unix:" + socket_path
        self.popen = subprocess.Popen([tool, "baseline-server", "--listen", self.endpoint,
                                       "--copy-from", copy_from, "--max-seconds", "600"],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self.stderr)
        self.pid = self.popen.pid
        selector = selectors.DefaultSelector()
        selector.register(self.popen.stdout, selectors.EVENT_READ)
        if not selector.select(15):
            self.stop()
            raise BenchError("baseline server: not ready within 15 s")
        selector.close()
        line = self.popen.stdout.readline().decode(errors="replace")
        try:
            hello = json.loads(line)
        except ValueError:
            hello = {"error": line.strip() or "exited"}
        if not hello.get("ready"):
            self.stop()
            raise BenchError(f"baseline server: {hello.get('error')}")
        self.response_bytes = hello.get("response_bytes")

    def stop(self):
        if self.popen.poll() is None:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.stderr.close()


class Node:
    """A node started with `agentnetwork start` in its own data directory."""

    def __init__(self, binary, data_dir, name):
        self.binary = binary
        self.data_dir = data_dir
        self.name = name
        self.started = False

    def start(self):
        result = subprocess.run([self.binary, "start", "-data", self.data_dir, "-listen",
                                 "/ip4/127.0.0.1/tcp/0"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=30)
        self.started = True  # stop() even if start half-failed
        if result.returncode != 0:
            raise BenchError(f"start {self.name}: {result.stderr.decode(errors='replace').strip()}")
        status = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(self.data_dir, "node.status")) as f:
                    status = json.load(f)
                if status.get("grpc"):
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        if not status or not status.get("grpc"):
            raise BenchError(f"{self.name}: no \"grpc\" endpoint in node.status")
        self.endpoint = status["grpc"]
        self.peer_id = status["node_id"]
        self.pid = int(status["pid"])
        address = status["listen_addrs"][0]
        self.address = address if "/p2p/" in address else f"{address}/p2p/{self.peer_id}"

    def stop(self):
        if not self.started:
            return
        subprocess.run([self.binary, "stop", "-data", self.data_dir, "-timeout", "5"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        self.started = False

    def running(self):
        return subprocess.run([self.binary, "status", "-data", self.data_dir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0

    def log_lines(self, levels=("warn", "error", "critical")):
        """Log lines at the given levels (spdlog's "[warning]" / "[error]" tags)."""
        found = []
        logs = os.path.join(self.data_dir, "logs")
        pattern = re.compile(r"\[(warn|warning|error|err|critical)\]", re.I)
        try:
            for name in sorted(os.listdir(logs)):
                with open(os.path.join(logs, name), errors="replace") as f:
                    found += [line.rstrip() for line in f if pattern.search(line)]
        except OSError:
            pass
        return found


def sched_ns(pid, tid):
    """(time running, time runnable but waiting for a CPU) of one thread, in ns; None where the
    kernel has no schedstat."""
    try:
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            run, wait, _ = (int(v) for v in f.read().split())
        return run, wait
    except (OSError, ValueError):
        return None


def cpu_ticks(pid, tid=None):
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    with open(path) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def busy_fraction(seconds=1.0):
    """Share of all CPUs busy over `seconds` (while this script waits: other people's load)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values[:8]), idle
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def timed(cmd):
    begin = time.perf_counter()
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    return result, time.perf_counter() - begin


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
    directory = os.path.dirname(binary)
    for _ in range(3):
        try:
            with open(os.path.join(directory, "CMakeCache.txt")) as f:
                match = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", f.read(), re.M)
                return match.group(1) if match else "unknown"
        except OSError:
            directory = os.path.dirname(directory)
    return "unknown"


# ---- the benchmark ----------------------------------------------------------------------------

class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.binary = args.binary
        self.tool = args.api_load
        self.results = {}

    def api_load(self, *words, timeout):
        return Tool([self.tool, *words], timeout)

    def ping_cmd(self, count):
        a = self.args
        return ("ping", "--target", self.a.endpoint, "--peer", self.b.peer_id, "--count",
                str(count), "--interval-ms", str(a.ping_interval_ms))

    def churn_cmd(self, seconds):
        a = self.args
        return ("churn", "--nodes", ",".join(n.endpoint for n in self.extras), "--to",
                self.a.address, "--seconds", str(seconds), "--hold-ms", str(a.hold_ms),
                "--pause-ms", str(a.pause_ms), "--max-cycles", "100000")

    def load_cmd(self, target, clients, seconds, rate=0):
        return ("load", "--target", target, "--clients", str(clients), "--seconds", str(seconds),
                "--rate", str(rate), "--max-calls", str(self.args.max_calls), "--deadline-ms",
                "5000")

    def phase(self, name, target_pid, load_target=None, clients=0, seconds=0.0, churn=False,
              ping_count=0, rate=0):
        """Runs the given parts side by side; CPU of `target_pid` (and its main thread: for a
        node, its network thread) over the phase, and how node A's network thread spent it."""
        log(name)
        ticks0 = cpu_ticks(target_pid)
        main0 = cpu_ticks(target_pid, target_pid)
        sched0 = sched_ns(self.a.pid, self.a.pid)
        wall0 = time.monotonic()
        tools = {}
        if churn:
            churn_seconds = seconds if seconds else ping_count * self.args.ping_interval_ms / 1000
            tools["churn"] = self.api_load(*self.churn_cmd(churn_seconds),
                                           timeout=churn_seconds + 60)
        if ping_count:
            tools["ping"] = self.api_load(*self.ping_cmd(ping_count),
                                          timeout=ping_count * (self.args.ping_interval_ms / 1000
                                                                + 5) + 30)
        if load_target:
            tools["load"] = self.api_load(*self.load_cmd(load_target, clients, seconds, rate),
                                          timeout=seconds + 60)
        out = {part: tool.result() for part, tool in tools.items()}
        wall = time.monotonic() - wall0
        sched1 = sched_ns(self.a.pid, self.a.pid)
        if sched0 and sched1:
            # Share of the phase node A's network thread ran, and was ready but not running.
            out["a_net_thread_run"] = (sched1[0] - sched0[0]) / 1e9 / wall
            out["a_net_thread_wait"] = (sched1[1] - sched0[1]) / 1e9 / wall
        out["server_cpu_s"] = (cpu_ticks(target_pid) - ticks0) / CLK_TCK
        out["server_main_thread_cpu_s"] = (cpu_ticks(target_pid, target_pid) - main0) / CLK_TCK
        out["wall_s"] = wall
        if "load" in out and out["load"]["calls"]:
            calls = out["load"]["calls"]
            out["server_cpu_us_per_call"] = out["server_cpu_s"] * 1e6 / calls
            out["server_main_thread_cpu_us_per_call"] = (out["server_main_thread_cpu_s"] * 1e6
                                                         / calls)
        self.results[name] = out
        return out

    def run(self):
        a = self.args
        self.a = Node(self.binary, os.path.join(self.workdir, "a"), "A")
        self.b = Node(self.binary, os.path.join(self.workdir, "b"), "B")
        self.extras = [Node(self.binary, os.path.join(self.workdir, f"x{i}"), f"X{i}")
                       for i in range(a.extra_nodes)]
        self.nodes = [self.a, self.b, *self.extras]
        for node in self.nodes:
            node.start()
        log(f"nodes up: A {self.a.peer_id[:16]}…, B, {len(self.extras)} extra")
        self.api_load("connect", "--target", self.a.endpoint, "--to", self.b.address,
                      timeout=60).result()
        self.baseline = BaselineServer(self.tool, os.path.join(self.workdir, "base.sock"),
                                       self.a.endpoint, self.workdir)

        # Warm-up: channels, allocator, the page cache of every binary.
        self.api_load(*self.load_cmd(self.a.endpoint, a.clients, 1.0), timeout=60).result()
        self.api_load(*self.load_cmd(self.baseline.endpoint, a.clients, 1.0), timeout=60).result()

        ping_under_load = max(1, int(a.seconds * 1000 / a.ping_interval_ms))
        self.phase("idle", self.a.pid, ping_count=a.ping_count)
        self.phase("churn", self.a.pid, churn=True, ping_count=a.ping_count)
        self.phase("ours_paced_churn", self.a.pid, load_target=self.a.endpoint,
                   clients=a.clients, seconds=a.seconds, churn=True, ping_count=ping_under_load,
                   rate=a.paced_rate)
        self.phase("ours_load_churn", self.a.pid, load_target=self.a.endpoint, clients=a.clients,
                   seconds=a.seconds, churn=True, ping_count=ping_under_load)
        self.phase("baseline_load", self.baseline.pid, load_target=self.baseline.endpoint,
                   clients=a.clients, seconds=a.seconds, ping_count=ping_under_load)
        self.phase("ours_load", self.a.pid, load_target=self.a.endpoint, clients=a.clients,
                   seconds=a.seconds, ping_count=ping_under_load)
        self.phase("ours_single", self.a.pid, load_target=self.a.endpoint, clients=1,
                   seconds=a.single_seconds)
        self.phase("baseline_single", self.baseline.pid, load_target=self.baseline.endpoint,
                   clients=1, seconds=a.single_seconds)

        log(f"status x{a.status_runs}")
        status, version, floor = [], [], []
        true_path = shutil.which("true") or "/bin/true"
        for _ in range(a.status_runs):
            floor.append(timed([true_path])[1])
            result, elapsed = timed([self.binary, "version"])
            if result.returncode != 0:
                raise BenchError(f"version: {result.stderr.decode(errors='replace')}")
            version.append(elapsed)
            result, elapsed = timed([self.binary, "status", "-data", self.a.data_dir])
            if result.returncode != 0:
                raise BenchError(f"status: {result.stderr.decode(errors='replace')}")
            status.append(elapsed)
        self.results["status_ms"] = [s * 1000 for s in status]
        self.results["version_ms"] = [s * 1000 for s in version]
        self.results["true_ms"] = [s * 1000 for s in floor]
        self.results["baseline_response_bytes"] = self.baseline.response_bytes

        # The nodes survived, and what they logged at warning level and above.
        self.results["health"] = {
            node.name: {"running": node.running(), "warnings": len(node.log_lines()),
                        "first_warnings": node.log_lines()[:3]}
            for node in (self.a, self.b)}

    def stop_all(self):
        Tool.kill_all()
        if getattr(self, "baseline", None):
            self.baseline.stop()
        for node in getattr(self, "nodes", []):
            try:
                node.stop()
            except Exception as error:  # keep stopping the others
                log(f"stopping {node.name}: {error}")


# ---- report -----------------------------------------------------------------------------------

def summarize(r, args):
    """The figures the report and docs/PERFORMANCE.md use, as one flat dict."""
    def p(phase, part, key, q):
        value = r[phase][part][key]
        return value[q] if value else None

    s = {}
    s["clients"] = args.clients
    s["seconds"] = args.seconds
    for phase in ("ours_paced_churn", "ours_load_churn", "ours_load", "baseline_load",
                  "ours_single", "baseline_single"):
        load = r[phase]["load"]
        s[f"{phase}.calls_per_s"] = load["calls_per_s"]
        s[f"{phase}.calls"] = load["calls"]
        s[f"{phase}.errors"] = load["errors_total"]
        s[f"{phase}.errors_by_code"] = load["errors"]
        s[f"{phase}.latency_p50_us"] = p(phase, "load", "latency_us", "p50")
        s[f"{phase}.latency_p99_us"] = p(phase, "load", "latency_us", "p99")
        s[f"{phase}.latency_max_us"] = p(phase, "load", "latency_us", "max")
        s[f"{phase}.server_cpu_us_per_call"] = r[phase].get("server_cpu_us_per_call")
        s[f"{phase}.client_cpu_s"] = load["client_cpu_s"]
    s["ours_load_churn.network_thread_cpu_us_per_call"] = \
        r["ours_load_churn"].get("server_main_thread_cpu_us_per_call")
    s["ours_load.network_thread_cpu_us_per_call"] = \
        r["ours_load"].get("server_main_thread_cpu_us_per_call")
    s["ours_load_churn.peer_count"] = r["ours_load_churn"]["load"]["peer_count"]
    for phase in ("idle", "churn", "ours_paced_churn", "ours_load_churn", "baseline_load",
                  "ours_load"):
        ping = r[phase]["ping"]
        s[f"{phase}.ping_n"] = ping["pings"]
        s[f"{phase}.ping_errors"] = ping["errors_total"]
        s[f"{phase}.rtt_p50_us"] = p(phase, "ping", "rtt_us", "p50")
        s[f"{phase}.rtt_p99_us"] = p(phase, "ping", "rtt_us", "p99")
        s[f"{phase}.rtt_max_us"] = p(phase, "ping", "rtt_us", "max")
        s[f"{phase}.ping_call_p50_us"] = p(phase, "ping", "call_us", "p50")
        s[f"{phase}.ping_call_p99_us"] = p(phase, "ping", "call_us", "p99")
        s[f"{phase}.a_net_thread_run"] = r[phase].get("a_net_thread_run")
        s[f"{phase}.a_net_thread_wait"] = r[phase].get("a_net_thread_wait")
    for phase in ("churn", "ours_paced_churn", "ours_load_churn"):
        churn = r[phase]["churn"]
        s[f"{phase}.churn_cycles"] = churn["cycles"]
        s[f"{phase}.churn_cycles_per_s"] = churn["cycles_per_s"]
        s[f"{phase}.churn_errors"] = churn["errors_total"]
        s[f"{phase}.churn_errors_by_code"] = churn["errors"]
    s["ratio.calls_ours_churn_vs_baseline"] = (s["ours_load_churn.calls_per_s"]
                                               / s["baseline_load.calls_per_s"])
    s["ratio.calls_ours_vs_baseline"] = s["ours_load.calls_per_s"] / s["baseline_load.calls_per_s"]
    s["ratio.server_cpu_per_call_ours_vs_baseline"] = (
        s["ours_load.server_cpu_us_per_call"] / s["baseline_load.server_cpu_us_per_call"])
    s["ratio.single_latency_ours_vs_baseline"] = (s["ours_single.latency_p50_us"]
                                                  / s["baseline_single.latency_p50_us"])
    for phase in ("churn", "ours_paced_churn", "ours_load_churn", "baseline_load", "ours_load"):
        s[f"ratio.rtt_p50_{phase}_vs_idle"] = s[f"{phase}.rtt_p50_us"] / s["idle.rtt_p50_us"]
        s[f"ratio.rtt_p99_{phase}_vs_idle"] = s[f"{phase}.rtt_p99_us"] / s["idle.rtt_p99_us"]
    s["ratio.rtt_p50_ours_churn_vs_baseline_load"] = (s["ours_load_churn.rtt_p50_us"]
                                                      / s["baseline_load.rtt_p50_us"])
    s["status_median_ms"] = statistics.median(r["status_ms"])
    s["status_min_ms"] = min(r["status_ms"])
    s["status_max_ms"] = max(r["status_ms"])
    s["version_median_ms"] = statistics.median(r["version_ms"])
    s["true_median_ms"] = statistics.median(r["true_ms"])
    s["ratio.status_vs_version"] = s["status_median_ms"] / s["version_median_ms"]
    s["ratio.status_vs_true"] = s["status_median_ms"] / s["true_median_ms"]
    s["baseline_response_bytes"] = r["baseline_response_bytes"]
    s["health"] = r["health"]
    s["api_errors_total"] = sum(s[f"{ph}.errors"] for ph in ("ours_paced_churn",
                                                               "ours_load_churn", "ours_load",
                                                               "ours_single"))
    s["ping_errors_total"] = sum(s[f"{ph}.ping_errors"] for ph in ("idle", "churn",
                                                                     "ours_paced_churn",
                                                                     "ours_load_churn",
                                                                     "baseline_load",
                                                                     "ours_load"))
    s["churn_errors_total"] = sum(s[f"{ph}.churn_errors"] for ph in ("churn", "ours_paced_churn",
                                                                       "ours_load_churn"))
    return s


def report(s, args, context):
    out = []
    w = out.append
    f0 = "{:.0f}".format
    f1 = "{:.1f}".format

    def pct(value):
        return "-" if value is None else f"{value * 100:.0f}%"
    w(f"# Control API benchmark\n")
    w(f"{context['cpu']} ×{context['cpus']}, build {context['build_type']}; CPUs "
      f"{context['busy_before'] * 100:.0f}% busy before the run and "
      f"{context['busy_after'] * 100:.0f}% after (other work); {context['elapsed']:.0f} s.\n")
    w(f"**GetStatus, {args.clients} clients, {args.seconds:g} s each** (each client its own "
      f"thread, channel and connection, back to back; latency seen by the client):\n")
    w("| server | calls/s | vs baseline | errors | p50 µs | p99 µs | max µs | "
      "server CPU µs/call |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("node A, peers churning, ping running", "ours_load_churn",
             s["ratio.calls_ours_churn_vs_baseline"]),
            ("node A, ping running", "ours_load", s["ratio.calls_ours_vs_baseline"]),
            ("bare gRPC server (baseline), ping running", "baseline_load", 1.0)]
    for name, ph, ratio in rows:
        w(f"| {name} | {f0(s[ph + '.calls_per_s'])} | {ratio * 100:.0f}% | {s[ph + '.errors']} | "
          f"{f0(s[ph + '.latency_p50_us'])} | {f0(s[ph + '.latency_p99_us'])} | "
          f"{f0(s[ph + '.latency_max_us'])} | {f1(s[ph + '.server_cpu_us_per_call'])} |")
    w("")
    w(f"Server CPU per call, node A / baseline: "
      f"{s['ratio.server_cpu_per_call_ours_vs_baseline']:.2f}x (without churn). "
      f"Node A's network thread: {f1(s['ours_load_churn.network_thread_cpu_us_per_call'])} µs "
      f"CPU per call under churn, {f1(s['ours_load.network_thread_cpu_us_per_call'])} µs "
      f"without. Peer count seen by the clients under churn: "
      f"{s['ours_load_churn.peer_count']['min']}–{s['ours_load_churn.peer_count']['max']}. "
      f"Churn: {s['ours_load_churn.churn_cycles']} connect/disconnect cycles "
      f"({f1(s['ours_load_churn.churn_cycles_per_s'])}/s) by {args.extra_nodes} nodes, "
      f"{s['ours_load_churn.churn_errors']} errors.\n")
    w(f"Paced: {args.clients} clients at {args.paced_rate:g} calls/s in all on A, peers churning: "
      f"{f0(s['ours_paced_churn.calls_per_s'])} calls/s, {s['ours_paced_churn.errors']} errors, "
      f"latency p50 {f0(s['ours_paced_churn.latency_p50_us'])} µs, p99 "
      f"{f0(s['ours_paced_churn.latency_p99_us'])} µs.\n")
    w("**Ping A→B** (RTT measured by node A on /ipfs/ping/1.0.0; the whole Ping call beside "
      "it):\n")
    w("| while | pings | errors | RTT p50 µs | RTT p99 µs | RTT max µs | p50 vs idle | "
      "p99 vs idle | Ping call p50 µs | Ping call p99 µs | A's network thread running / "
      "waiting for a CPU |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [("idle", "idle"), ("peers churning", "churn"),
            (f"{args.clients} clients on A at {args.paced_rate:g} calls/s in all + churn",
             "ours_paced_churn"),
            (f"{args.clients} clients on A + churn", "ours_load_churn"),
            (f"{args.clients} clients on A", "ours_load"),
            (f"{args.clients} clients on the baseline server", "baseline_load")]
    for name, ph in rows:
        r50 = 1.0 if ph == "idle" else s[f"ratio.rtt_p50_{ph}_vs_idle"]
        r99 = 1.0 if ph == "idle" else s[f"ratio.rtt_p99_{ph}_vs_idle"]
        w(f"| {name} | {s[ph + '.ping_n']} | {s[ph + '.ping_errors']} | "
          f"{f0(s[ph + '.rtt_p50_us'])} | {f0(s[ph + '.rtt_p99_us'])} | "
          f"{f0(s[ph + '.rtt_max_us'])} | {r50:.2f}x | {r99:.2f}x | "
          f"{f0(s[ph + '.ping_call_p50_us'])} | {f0(s[ph + '.ping_call_p99_us'])} | "
          f"{pct(s[ph + '.a_net_thread_run'])} / {pct(s[ph + '.a_net_thread_wait'])} |")
    w("")
    w(f"**One client** ({args.single_seconds:g} s, back to back): node A "
      f"{f0(s['ours_single.calls_per_s'])} calls/s, p50 {f0(s['ours_single.latency_p50_us'])} µs; "
      f"baseline {f0(s['baseline_single.calls_per_s'])} calls/s, p50 "
      f"{f0(s['baseline_single.latency_p50_us'])} µs "
      f"({s['ratio.single_latency_ours_vs_baseline']:.2f}x).\n")
    w(f"**`agentnetwork status`** through the API, {args.status_runs} runs: median "
      f"{s['status_median_ms']:.2f} ms (min {s['status_min_ms']:.2f}, max "
      f"{s['status_max_ms']:.2f}); `agentnetwork version` (process start, no call) "
      f"{s['version_median_ms']:.2f} ms, ratio {s['ratio.status_vs_version']:.2f}x; `true` "
      f"(process start floor) {s['true_median_ms']:.2f} ms, ratio "
      f"{s['ratio.status_vs_true']:.1f}x.\n")
    health = s["health"]
    errors = (s["api_errors_total"], s["ping_errors_total"], s["churn_errors_total"])
    if errors == (0, 0, 0):
        verdict = "none"
    else:
        verdict = (f"**{errors[0]} GetStatus, {errors[1]} Ping, {errors[2]} Connect/Disconnect** "
                   "(see the JSON for codes and messages)")
    nodes = ", ".join(f"{name} {'running' if h['running'] else '**gone**'} ({h['warnings']} "
                      f"warnings logged)" for name, h in health.items())
    w(f"Errors: {verdict}; nodes after the run: {nodes}.")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"),
                        help="build directory to find the binaries in (default: build)")
    parser.add_argument("--binary", help="agentnetwork (default: BUILD/src/agentnetwork)")
    parser.add_argument("--api-load", help="an-api-load (default: BUILD/bench/an-api-load)")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0, help="each 50-client load")
    parser.add_argument("--paced-rate", type=float, default=2000.0,
                        help="GetStatus calls/s in all of the paced phase")
    parser.add_argument("--single-seconds", type=float, default=2.0)
    parser.add_argument("--max-calls", type=int, default=5_000_000, help="cap of each load")
    parser.add_argument("--extra-nodes", type=int, default=3, help="nodes that churn")
    parser.add_argument("--hold-ms", type=int, default=50, help="churn: connected this long")
    parser.add_argument("--pause-ms", type=int, default=50, help="churn: then apart this long")
    parser.add_argument("--ping-count", type=int, default=200, help="idle and churn pings")
    parser.add_argument("--ping-interval-ms", type=int, default=20)
    parser.add_argument("--status-runs", type=int, default=30)
    parser.add_argument("--json-out", help="also write the JSON summary and raw results here")
    args = parser.parse_args()
    # Bounded: every loop below is counted, and every child has a timeout.
    args.clients = max(1, min(args.clients, 256))
    args.seconds = max(1.0, min(args.seconds, 60.0))
    args.single_seconds = max(0.5, min(args.single_seconds, 30.0))
    args.paced_rate = max(1.0, min(args.paced_rate, 100_000.0))
    args.max_calls = max(1000, min(args.max_calls, 50_000_000))
    args.extra_nodes = max(1, min(args.extra_nodes, 16))
    args.ping_count = max(10, min(args.ping_count, 5000))
    args.ping_interval_ms = max(1, min(args.ping_interval_ms, 1000))
    args.status_runs = max(3, min(args.status_runs, 500))
    args.binary = os.path.abspath(args.binary or os.path.join(args.build, "src", "agentnetwork"))
    args.api_load = os.path.abspath(args.api_load or os.path.join(args.build, "bench",
                                                                   "an-api-load"))
    for path, target in ((args.binary, "agentnetwork"), (args.api_load, "an-api-load")):
        if not os.access(path, os.X_OK):
            sys.exit(f"no {target} at {path}: cmake --build BUILD --target {target}")

    context = {"cpu": cpu_model(), "cpus": os.cpu_count(), "build_type": build_type(args.binary)}
    context["busy_before"] = busy_fraction()
    if context["busy_before"] > 0.10:
        log(f"warning: the CPUs are {context['busy_before'] * 100:.0f}% busy with other work")
    workdir = tempfile.mkdtemp(prefix="an-api-bench-")  # short: api.sock paths stay < 108 bytes
    bench = Bench(args, workdir)
    begin = time.monotonic()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    failed = None
    try:
        bench.run()
    except BenchError as error:
        failed = str(error)
    finally:
        bench.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if failed is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if failed is not None:
        sys.exit(f"api_bench failed: {failed}\n(data directories and logs kept in {workdir})")
    context["elapsed"] = time.monotonic() - begin
    context["busy_after"] = busy_fraction()
    summary = summarize(bench.results, args)
    print(report(summary, args, context))
    print()
    print(json.dumps({"summary": summary, "context": context}))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"summary": summary, "context": context, "raw": bench.results}, f, indent=1)


if __name__ == "__main__":
    main()
