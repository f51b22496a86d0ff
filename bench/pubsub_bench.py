#!/usr/bin/env python3
"""Gossipsub benchmark: N nodes on loopback (default 30), one publisher, 1 KiB messages, ours
next to js-libp2p (@libp2p/gossipsub 17) in the same run.

Ours: N `agentnetwork p2pd -pubsub` processes (control on Unix sockets in a temporary
directory, P2P on 127.0.0.1), driven through the p2pd control protocol. js: N js-libp2p nodes
with gossipsub's defaults (IP colocation penalty off, as all share 127.0.0.1) in --js-procs
Node.js processes (default 2, one per core of the reference machine). Both are measured by
bench/js/pubsub_bench.mjs with the same topology (node i dials --degree random earlier nodes,
seeded), the same messages and phases:

  - latency: --latency-count messages at --latency-rate per second; the time from publish to
    each delivery (p50/p99) and to the last subscriber of each message ("to all", p50/p99);
    bytes the node processes wrote (/proc/PID/io wchar, less what ours wrote to the control
    sockets) per delivery: the amplification;
  - rate ramp (--rates, each --step-seconds, then up to --drain-seconds): the sustained rate is
    the highest step where every subscriber got every message and the publisher kept up;
  - RSS per node (VmRSS; js: a process's RSS divided by the nodes it hosts).

Each subscriber of ours gets its messages through a p2pd SUBSCRIBE control connection (a
PSMessage per message written to a Unix socket and parsed by the harness); js subscribers get
theirs in process. Both publish from node 0, --runs times each, ours then js in each run. The
report: medians over the runs, the ratios, issue 18's goals (>= 5x js messages/s, lower p99,
amplification no worse), then one JSON line. All processes share the machine's CPUs: other load
skews every figure.

Usage: bench/pubsub_bench.py [--build build | --binary PATH] [--quick] [--runs N] [--nodes 30]
                             [--skip-js] [--check] [--json-out FILE]
Needs the agentnetwork binary and node >= 20 with tests/interop/node_modules (cd tests/interop
&& npm ci); the js side is skipped with a note when those are missing. --quick: fewer messages
and a short ramp, about a minute. --check: exit 1 when a node stops, the warm-up loses a
message or the latency phase loses one (not on the figures).
Loopback and Unix sockets only; every process started is stopped before the script exits.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from js_deps import ensure_interop_modules

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INTEROP = os.path.join(ROOT, "tests", "interop")
JS_BENCH = os.path.join(HERE, "js", "pubsub_bench.mjs")
POLYFILL = os.path.join(INTEROP, "polyfill.mjs")
STARTUP_TIMEOUT_S = 20
MEASURE_TIMEOUT_S = 900

GOALS = {
    "messages_vs_js": 5.0,        # sustained messages/s >= 5x js
    "p99_vs_js": 1.0,             # p99 latency below js's (ratio ours/js < 1)
    "amplification_vs_js": 1.0,   # bytes per delivery no more than js's
}


def log(message):
    print(f"[pubsub_bench] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


class P2pd:
    """One `agentnetwork p2pd -pubsub` process."""

    def __init__(self, binary, socket_path, router):
        self.socket_path = socket_path
        self.popen = subprocess.Popen(
            [binary, "p2pd", "-pubsub", f"-pubsubRouter={router}", f"-listen=/unix{socket_path}",
             "-hostAddrs=/ip4/127.0.0.1/tcp/0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def wait_ready(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.popen.stdout.readline().decode(errors="replace")
            if line.startswith("Control socket:"):
                return
            if not line and self.popen.poll() is not None:
                raise BenchError(f"p2pd exited with {self.popen.returncode} at start")
        raise BenchError("p2pd printed no control socket in time")

    def alive(self):
        return self.popen.poll() is None

    def stop(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)


def measure(node_bin, impl, args, extra):
    common = ["--size", str(args.size), "--degree", str(args.degree), "--seed", str(args.seed),
              "--latency-count", str(args.latency_count), "--latency-rate",
              str(args.latency_rate), "--rates", ",".join(str(r) for r in args.rates),
              "--step-seconds", str(args.step_seconds), "--drain-seconds",
              str(args.drain_seconds)]
    cmd = [node_bin, "--import", POLYFILL, JS_BENCH, impl, *extra, *common]
    result = subprocess.run(cmd, cwd=os.path.dirname(JS_BENCH), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=None, timeout=MEASURE_TIMEOUT_S)
    lines = [line for line in result.stdout.decode(errors="replace").splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise BenchError(f"pubsub_bench.mjs {impl} failed (exit {result.returncode})")
    return json.loads(lines[-1])


def run_ours(binary, node_bin, args):
    tmp = tempfile.mkdtemp(prefix="an-pubsub-bench-")
    nodes = []
    try:
        for i in range(args.nodes):
            nodes.append(P2pd(binary, os.path.join(tmp, f"p{i}.sock"), args.router))
        for node in nodes:
            node.wait_ready()
        result = measure(node_bin, "ours", args,
                         ["--sockets", ",".join(n.socket_path for n in nodes),
                          "--pids", ",".join(str(n.popen.pid) for n in nodes)])
        stopped = [i for i, n in enumerate(nodes) if not n.alive()]
        result["stopped_nodes"] = stopped
        return result
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run_js(node_bin, args):
    return measure(node_bin, "js", args, ["--nodes", str(args.nodes), "--procs",
                                          str(args.js_procs)])


def cpu_busy(seconds=1.0):
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]
    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 1.0 - (idle1 - idle0) / max(1, total1 - total0)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(results):
    return {
        "sustained_rate": median([r["throughput"]["sustained_rate"] for r in results]),
        "p50_ms": median([r["latency"]["p50_ms"] for r in results]),
        "p99_ms": median([r["latency"]["p99_ms"] for r in results]),
        "all_p50_ms": median([r["latency"]["all_p50_ms"] for r in results]),
        "all_p99_ms": median([r["latency"]["all_p99_ms"] for r in results]),
        "bytes_per_delivery": median([r["latency"]["bytes_per_delivery"] for r in results]),
        "rss_kib_per_node": median([r["rss_kib"]["per_node_median"] for r in results]),
        "latency_lost": max(r["latency"]["lost"] for r in results),
        "connections_closed": max(r["latency"].get("connections_closed", 0) for r in results),
        "lowest_step": min(r["throughput"]["steps"][0]["rate"] for r in results
                           if r["throughput"]["steps"]) if any(
            r["throughput"]["steps"] for r in results) else None,
        "duplicates": max(r["latency"]["duplicates"] for r in results),
    }


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--binary")
    parser.add_argument("--node", default=shutil.which("node"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--nodes", type=int, default=30)
    parser.add_argument("--degree", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--router", choices=["gossipsub", "floodsub"], default="gossipsub")
    parser.add_argument("--js-procs", type=int, default=2)
    parser.add_argument("--latency-count", type=int)
    parser.add_argument("--latency-rate", type=int, default=20)
    parser.add_argument("--rates")
    parser.add_argument("--step-seconds", type=float)
    parser.add_argument("--drain-seconds", type=float, default=3)
    parser.add_argument("--skip-js", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    args.runs = args.runs or (1 if args.quick else 3)
    args.latency_count = args.latency_count or (100 if args.quick else 300)
    args.step_seconds = args.step_seconds or (1 if args.quick else 3)
    default_rates = ("10,20,50,100,200,400" if args.quick else
                     "10,20,50,100,200,400,800,1600,3200")
    args.rates = [int(r) for r in (args.rates or default_rates).split(",")]
    binary = args.binary or os.path.join(args.build, "agentnetwork")
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"pubsub_bench: no agentnetwork binary at {binary}")
    if args.node is None:
        raise SystemExit("pubsub_bench: node (>= 20) is required to measure")
    js_enabled = not args.skip_js and ensure_interop_modules(INTEROP, log)

    busy_before = cpu_busy()
    ours, js, failures = [], [], []
    for run in range(args.runs):
        log(f"run {run + 1}/{args.runs}: ours ({args.nodes} p2pd -pubsub)")
        result = run_ours(binary, args.node, args)
        ours.append(result)
        if result["stopped_nodes"]:
            failures.append(f"run {run + 1}: nodes {result['stopped_nodes']} stopped")
        if result["warmup_lost"] or result["latency"]["lost"]:
            failures.append(f"run {run + 1}: ours lost {result['warmup_lost']} warm-up and "
                            f"{result['latency']['lost']} latency-phase deliveries")
        if js_enabled:
            log(f"run {run + 1}/{args.runs}: js ({args.nodes} js-libp2p nodes in "
                f"{args.js_procs} processes)")
            js.append(run_js(args.node, args))
    busy_after = cpu_busy()

    o = summary(ours)
    j = summary(js) if js else None
    rows = [("sustained messages/s (no loss)", "sustained_rate", 0, "messages_vs_js"),
            ("latency p50, ms", "p50_ms", 2, None),
            ("latency p99, ms", "p99_ms", 2, "p99_vs_js"),
            ("to all subscribers p50, ms", "all_p50_ms", 2, None),
            ("to all subscribers p99, ms", "all_p99_ms", 2, None),
            ("bytes written per delivery", "bytes_per_delivery", 0, "amplification_vs_js"),
            ("RSS per node, KiB", "rss_kib_per_node", 0, None)]
    print(f"gossipsub, {args.nodes} nodes, {args.size}-byte messages, {args.runs} run(s); "
          f"CPU busy before {busy_before:.0%}, after {busy_after:.0%}")
    print(f"{'':34} {'ours':>10} {'js':>10} {'ours/js':>8}  goal")
    verdicts = {}
    for label, key, digits, goal in rows:
        ours_value = o[key]
        js_value = j[key] if j else None
        r = ratio(ours_value, js_value)
        shown = fmt(r, 2)
        if key == "sustained_rate" and j and not js_value and ours_value and j["lowest_step"]:
            # js kept up with none of the steps: the ratio is above ours / the lowest step.
            r = ours_value / j["lowest_step"]
            shown = f">{r:.1f}"
        verdict = ""
        if goal and r is not None:
            if goal == "messages_vs_js":
                met = r >= GOALS[goal]
            elif goal == "p99_vs_js":
                met = r < GOALS[goal]
            else:
                met = r <= GOALS[goal]
            verdicts[goal] = met
            sign = ">=" if goal == "messages_vs_js" else "<" if goal == "p99_vs_js" else "<="
            verdict = ("met" if met else "NOT met") + f" ({sign}{GOALS[goal]:g}x)"
        print(f"{label:34} {fmt(ours_value, digits):>10} {fmt(js_value, digits):>10} "
              f"{shown:>8}  {verdict}")
    for name, s in (("ours", o), ("js", j)):
        if s and (s["latency_lost"] or s["connections_closed"]):
            print(f"{name}: the latency phase lost {s['latency_lost']} deliveries and "
                  f"{s['connections_closed']} connections closed during it (worst run)")
    out = {"nodes": args.nodes, "size": args.size, "runs": args.runs, "ours": o, "js": j,
           "goals": verdicts, "cpu_busy": [busy_before, busy_after], "failures": failures,
           "raw": {"ours": ours, "js": js}}
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(out, f)
    print(json.dumps({k: v for k, v in out.items() if k != "raw"}))
    if failures:
        for failure in failures:
            log(f"failure: {failure}")
        if args.check:
            return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        log(f"error: {error}")
        sys.exit(1)
