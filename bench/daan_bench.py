#!/usr/bin/env python3
"""Agent messaging benchmark (/daan/message/1.0.0 and /daan/request/1.0.0): agent to agent
through the agents' API of two nodes, next to the same protocol between two js-libp2p peers
measured in the same run, and the durable inbox's write rate next to SQLite's own limit on the
same disk.

In temporary data directories it starts node A and node B (`agentnetwork start`, listening on
127.0.0.1, B with -bootstrap A), then, with an-agent-load (bench/agent_load.cpp), for each
payload size (--sizes, default 1 KiB and 64 KiB) and each of --runs runs:

  1. one-way messages: `receive` on A (one ReceiveMessages stream, acknowledging --ack-batch
     messages at a time) while `send` on B calls SendMessage to A's peer ID, --concurrency calls
     in flight, --count calls or --seconds. A SendMessage returns once node A has stored the
     message in its inbox (on disk, synchronous=FULL). Reported: messages/s end to end = the
     messages sent / the time from the sender's start until the receiving agent had read the
     last one; the sender's calls/s and call latency p50/p99 beside it.
  2. requests: `serve` on A (one ServeRequests stream echoing every payload) while `request` on
     B calls SendRequest to A, --concurrency in flight: round trips/s, the call's p50/p99 as the
     agent on B sees it, and the round trip node B measured on the stream.

Then the js baseline, bench/js/daan_bench.mjs (two js-libp2p processes on 127.0.0.1, the same
framing, one stream per message; its receiver stores nothing), with the same sizes, count,
seconds and concurrency, --runs times; then an-inbox-bench (bench/inbox_bench.cpp) in the same
temporary directory as the nodes' data: SQLite's insert rate with one transaction per insert
(WAL, synchronous=FULL) against Inbox::append one at a time and from concurrent producers.

Ours and js run one after the other in each run. The report: medians over the runs (min-max
beside them), the ratios ours/js taken run by run and their median (so that load from elsewhere,
which comes and goes, weighs less), the inbox ratios, the goals of issue 17 (>= 3x js on
messages/s; inbox >= 80% of the SQLite limit), then one JSON line with the summary. All
processes share the machine's CPUs: other load skews every figure, so the report states how busy
the CPUs were before and after.

Usage: bench/daan_bench.py [--build build] [--quick] [--runs 3] [--sizes 1024,65536]
                           [--count 20000] [--seconds 10] [--concurrency 16] [--skip-js]
                           [--skip-inbox] [--check] [--json-out FILE]
Needs: the agentnetwork binary and an-agent-load (cmake --build build --target agentnetwork
an-agent-load an-inbox-bench); node >= 20 with tests/interop/node_modules (cd tests/interop &&
npm ci) for the js side, which is skipped with a note when missing. --quick: one run, 500
operations or 2 s per case, well under a minute. --check: exit 1 when a call failed, a message
was lost or duplicated, an echo came back wrong or a node stopped (not on the figures).
Loopback and Unix sockets only; every node and process started is stopped before the script
exits, on failure too.
"""
import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from js_deps import ensure_interop_modules

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INTEROP = os.path.join(ROOT, "tests", "interop")
JS_BENCH = os.path.join(HERE, "js", "daan_bench.mjs")
CLK_TCK = os.sysconf("SC_CLK_TCK")
KIB = 1024

GOALS = {
    "messages_vs_js": 3.0,   # one-way messages/s >= 3x js-libp2p
    "inbox_vs_sqlite": 0.80,  # durable inbox writes >= 80% of SQLite's own insert rate
}


def log(message):
    print(f"[daan_bench] {message}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


# ---- processes --------------------------------------------------------------------------------

class Tool:
    """An an-agent-load run in the background: its last stdout line is its JSON result. With
    `pipe_stdin`, its stdin stays open until stop_input() (serve stops when it closes)."""

    running = []

    def __init__(self, cmd, timeout, pipe_stdin=False):
        self.cmd = cmd
        self.timeout = timeout
        self.begin = time.monotonic()
        self.popen = subprocess.Popen(cmd, stdin=subprocess.PIPE if pipe_stdin else
                                      subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        Tool.running.append(self)

    def stop_input(self):
        if self.popen.stdin:
            try:
                self.popen.stdin.close()
            except OSError:
                pass
            self.popen.stdin = None  # communicate() must not flush it

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
        try:
            answer = json.loads(lines[-1])
        except ValueError:
            raise BenchError(f"not JSON from {' '.join(self.cmd[:2])}: {lines[-1][:300]!r}")
        if self.popen.returncode != 0 or "error" in answer:
            why = answer.get("error", f"exit code {self.popen.returncode}")
            raise BenchError(f"{os.path.basename(self.cmd[0])} {self.cmd[1]}: {why}")
        return answer

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()  # this PID only
            self.popen.wait(5)

    @classmethod
    def kill_all(cls):
        for tool in list(cls.running):
            try:
                tool.stop_input()
                tool.kill()
            except Exception as error:  # keep killing the others
                log(f"stopping {tool.cmd[0]}: {error}")
        cls.running.clear()


class Node:
    """A node started with `agentnetwork start` in its own data directory."""

    def __init__(self, binary, data_dir, name):
        self.binary = binary
        self.data_dir = data_dir
        self.name = name
        self.started = False

    def start(self, *extra):
        result = subprocess.run([self.binary, "start", "-data", self.data_dir, "-listen",
                                 "/ip4/127.0.0.1/tcp/0", *extra], stdout=subprocess.PIPE,
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

    def log_lines(self):
        """Log lines at warning level and above (spdlog's "[warning]" / "[error]" tags)."""
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


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


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


def filesystem_type(path):
    """The type of the filesystem `path` is on (the longest mount point that holds it)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) < 3:
                    continue
                mount = fields[1].replace("\\040", " ")
                inside = path == mount or path.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, kind = mount, fields[2]
    except OSError:
        pass
    return kind


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


def js_versions():
    parts = []
    for name in ["libp2p", "@chainsafe/libp2p-noise", "@chainsafe/libp2p-yamux", "@libp2p/tcp"]:
        try:
            with open(os.path.join(INTEROP, "node_modules", name, "package.json")) as f:
                parts.append(f"{name} {json.load(f)['version']}")
        except (OSError, ValueError, KeyError):
            pass
    return ", ".join(parts)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def spread(values, fmt="{:.0f}"):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


def ms(value_us):
    return None if value_us is None else value_us / 1000.0


def size_name(size):
    return f"{size // KIB} KiB" if size % KIB == 0 and size >= KIB else f"{size} B"


# ---- the benchmark ----------------------------------------------------------------------------

class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.binary = args.binary
        self.tool = args.agent_load
        self.results = {"ours": {}, "js": {}, "inbox": None}
        self.problems = []  # what --check fails on
        self.notes = []

    def agent_load(self, *words, timeout, pipe_stdin=False):
        return Tool([self.tool, *(str(w) for w in words)], timeout, pipe_stdin=pipe_stdin)

    def node_cpu(self):
        return sum(cpu_seconds(node.pid) for node in self.nodes)

    # -- ours
    def messages(self, size):
        a = self.args
        # Every message the sender makes goes to the inbox, its warm-up calls (one per thread)
        # included; the receiver stops at that many, or when none came for --idle-ms.
        expected = a.count + a.concurrency
        cpu0 = self.node_cpu()
        receiver = self.agent_load("receive", "--target", self.a.endpoint, "--count", expected,
                                   "--seconds", a.seconds + 60, "--ack-batch", a.ack_batch,
                                   "--idle-ms", 5000, "--size", size, timeout=a.seconds + 90)
        try:
            sent = self.agent_load("send", "--target", self.b.endpoint, "--peer",
                                   self.a.peer_id, "--size", size, "--count", a.count,
                                   "--concurrency", a.concurrency, "--seconds", a.seconds,
                                   timeout=a.seconds + 60).result()
        except BenchError:
            receiver.kill()
            raise
        got = receiver.result()
        cpu = self.node_cpu() - cpu0
        # One warm-up call per thread succeeded (retried ones failed and stored nothing).
        warmup = sent["concurrency"]
        out = {"send": sent, "receive": got}
        delivered = got["messages"] - warmup  # the timed ones
        if got["last_unix_ns"] is not None and delivered > 0:
            span = (got["last_unix_ns"] - sent["start_unix_ns"]) / 1e9
            out["e2e_per_s"] = delivered / span if span > 0 else None
            out["e2e_seconds"] = span
        else:
            out["e2e_per_s"] = None
        out["node_cpu_us_per_message"] = (cpu * 1e6 / got["messages"] if got["messages"]
                                          else None)
        what = f"messages {size_name(size)}"
        if sent["errors_total"]:
            self.problems.append(f"{what}: {sent['errors_total']} SendMessage errors "
                                 f"{sent['error_messages']}")
        if got["messages"] != sent["calls"] + warmup:
            self.problems.append(f"{what}: the receiver read {got['messages']} messages, "
                                 f"{sent['calls'] + warmup} were stored")
        if got["distinct"] is not None and got["distinct"] != got["messages"]:
            self.problems.append(f"{what}: {got['messages'] - got['distinct']} duplicates")
        if got["wrong_size"] or got["out_of_order"]:
            self.problems.append(f"{what}: {got['wrong_size']} payloads of another size, "
                                 f"{got['out_of_order']} out of order")
        if got["ack_errors"] or got["acked"] != got["messages"]:
            self.problems.append(f"{what}: {got['acked']} of {got['messages']} acknowledged, "
                                 f"{got['ack_errors']} AckMessages errors")
        return out

    def requests(self, size):
        a = self.args
        cpu0 = self.node_cpu()
        server = self.agent_load("serve", "--target", self.a.endpoint, "--seconds",
                                 a.seconds + 120, timeout=a.seconds + 150, pipe_stdin=True)
        try:
            asked = self.agent_load("request", "--target", self.b.endpoint, "--peer",
                                    self.a.peer_id, "--size", size, "--count", a.count,
                                    "--concurrency", a.concurrency, "--seconds", a.seconds,
                                    "--ready-ms", 10000, timeout=a.seconds + 90).result()
        finally:
            server.stop_input()
        served = server.result()
        cpu = self.node_cpu() - cpu0
        what = f"requests {size_name(size)}"
        if asked["errors_total"] or asked["error_answers"] or asked["mismatched"]:
            self.problems.append(f"{what}: {asked['errors_total']} SendRequest errors "
                                 f"{asked['error_messages']}, {asked['error_answers']} error "
                                 f"answers ({asked['first_error_answer']!r}), "
                                 f"{asked['mismatched']} wrong echoes")
        total = asked["calls"] + asked["concurrency"]
        return {"request": asked, "serve": served,
                "node_cpu_us_per_request": cpu * 1e6 / total if total else None}

    # -- js
    def js(self, run):
        a = self.args
        cmd = [self.node_bin, JS_BENCH, "--payloads", ",".join(str(s) for s in a.sizes),
               "--cases", "message,request", "--count", str(a.count), "--seconds",
               str(a.seconds), "--concurrency", str(a.concurrency), "--warmup",
               str(a.js_warmup)]
        # Each case is bounded by --seconds plus its warm-up; the server start by 30 s.
        timeout = 60 + len(a.sizes) * 2 * (2 * a.seconds + 30)
        log(f"js-libp2p baseline, run {run + 1}/{a.runs}")
        stderr_path = os.path.join(self.workdir, f"js.{run}.err")
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(cmd, cwd=HERE, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=stderr)
            Tool.running.append(_Wrapped(proc, cmd))
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
                raise BenchError(f"js baseline: no result within {timeout:.0f} s")
            finally:
                Tool.running[:] = [t for t in Tool.running if getattr(t, "popen", None) is not proc]
        cases = []
        for line in out.decode(errors="replace").splitlines():
            try:
                cases.append(json.loads(line))
            except ValueError:
                continue
        if proc.returncode != 0 or not cases:
            with open(stderr_path, errors="replace") as f:
                tail = f.read()[-800:]
            raise BenchError(f"js baseline: exit code {proc.returncode}: {tail}")
        for case in cases:
            kind = case.get("case")
            size = case.get("payload_bytes", case.get("size"))
            key = f"{'messages' if kind == 'message' else 'requests'}.{size}"
            self.results["js"].setdefault(key, []).append({
                "per_s": case.get("per_second", case.get("per_s")),
                "p50_ms": case.get("p50_ms"),
                "p99_ms": case.get("p99_ms"),
                "count": case.get("count"),
                "errors": case.get("errors", 0),
                "cpu_s": ((case.get("client_cpu_s") or 0) + (case.get("server_cpu_s") or 0)
                          if case.get("server_cpu_s") is not None else None),
                "loadavg_1m": case.get("loadavg_1m"),
            })
            if case.get("errors"):
                self.notes.append(f"js {kind} {size_name(size)}: {case['errors']} errors")

    # -- inbox
    def inbox(self):
        a = self.args
        if not os.access(a.inbox_bench, os.X_OK):
            self.notes.append(f"inbox limit: no an-inbox-bench at "
                              f"{os.path.relpath(a.inbox_bench, ROOT)} (cmake --build BUILD "
                              f"--target an-inbox-bench)")
            return
        log("durable inbox against the SQLite limit")
        cmd = [a.inbox_bench, "--dir", self.workdir, "--count", str(a.inbox_count), "--seconds",
               str(a.inbox_seconds), "--runs", str(a.inbox_runs), "--payload", "1024",
               "--producers", str(a.concurrency)]
        timeout = 60 + 3 * a.inbox_runs * (a.inbox_seconds + 10)
        try:
            result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"an-inbox-bench: no result within {timeout:.0f} s")
        text = result.stdout.decode(errors="replace")
        if result.returncode != 0:
            raise BenchError(f"an-inbox-bench: exit code {result.returncode}: "
                             f"{result.stderr.decode(errors='replace')[-500:]}")
        # Rows: | (a) name | writes/s | min-max | p50 ms | p99 ms | / (a) |
        phases = {}
        for line in text.splitlines():
            match = re.match(r"\|\s*\(([abc])\)\s*([^|]*)\|\s*([\d.]+)\s*\|\s*([^|]*)\|"
                             r"\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)\s*\|", line)
            if match:
                phases[match.group(1)] = {
                    "name": match.group(2).strip(), "writes_per_s": float(match.group(3)),
                    "range": match.group(4).strip(), "p50_ms": float(match.group(5)),
                    "p99_ms": float(match.group(6)), "vs_limit": float(match.group(7))}
        if set(phases) != {"a", "b", "c"}:
            raise BenchError(f"an-inbox-bench: no table in its output: {text[-500:]!r}")
        header = text.splitlines()[0] if text else ""
        self.results["inbox"] = {"phases": phases, "header": header, "command": " ".join(
            [os.path.basename(cmd[0]), *cmd[1:2], "TMP", *cmd[3:]])}

    def run(self):
        a = self.args
        self.a = Node(self.binary, os.path.join(self.workdir, "a"), "A")
        self.b = Node(self.binary, os.path.join(self.workdir, "b"), "B")
        self.nodes = [self.a, self.b]
        self.a.start()
        self.b.start("-bootstrap", self.a.address)
        log(f"nodes up: A {self.a.peer_id[:16]}…, B {self.b.peer_id[:16]}…")
        # Warm-up: B reaches A, channels open, the page cache holds every binary.
        warm = max(50, a.concurrency * 4)
        receiver = self.agent_load("receive", "--target", self.a.endpoint, "--count",
                                   warm + a.concurrency, "--seconds", 60, "--idle-ms", 3000,
                                   timeout=90)
        self.agent_load("send", "--target", self.b.endpoint, "--peer", self.a.peer_id, "--size",
                        KIB, "--count", warm, "--concurrency", a.concurrency, "--seconds", 10,
                        "--ready-ms", 20000, timeout=60).result()
        receiver.result()
        if not self.js_enabled:
            self.notes.append("js-libp2p baseline skipped (--skip-js, or node or "
                              "tests/interop/node_modules missing: cd tests/interop && npm ci)")
        # Ours and js one after the other in each run, so that a ratio is taken between figures
        # measured close together: load from elsewhere comes and goes on a shared machine.
        for run in range(a.runs):
            for size in a.sizes:
                log(f"ours, {size_name(size)}, run {run + 1}/{a.runs}: messages")
                self.results["ours"].setdefault(f"messages.{size}", []).append(
                    self.messages(size))
                log(f"ours, {size_name(size)}, run {run + 1}/{a.runs}: requests")
                self.results["ours"].setdefault(f"requests.{size}", []).append(
                    self.requests(size))
            if self.js_enabled:
                self.js(run)
        self.results["health"] = {
            node.name: {"running": node.running(), "warnings": len(node.log_lines()),
                        "first_warnings": node.log_lines()[:3]}
            for node in self.nodes}
        for name, health in self.results["health"].items():
            if not health["running"]:
                self.problems.append(f"node {name} is not running after the run")
        for node in self.nodes:
            node.stop()
        if not a.skip_inbox:
            self.inbox()

    def stop_all(self):
        Tool.kill_all()
        for node in getattr(self, "nodes", []):
            try:
                node.stop()
            except Exception as error:  # keep stopping the others
                log(f"stopping {node.name}: {error}")


class _Wrapped:
    """A js process in Tool.running, so that kill_all stops it too."""

    def __init__(self, popen, cmd):
        self.popen = popen
        self.cmd = cmd

    def stop_input(self):
        pass

    def kill(self):
        if self.popen.poll() is None:
            self.popen.kill()  # this PID only; the js server process ends with its stdin
            self.popen.wait(5)


# ---- report -----------------------------------------------------------------------------------

def summarize(r, args):
    """The figures of the report and docs/PERFORMANCE.md, as one flat dict of medians."""
    s = {"runs": args.runs, "count": args.count, "seconds": args.seconds,
         "concurrency": args.concurrency, "sizes": args.sizes}
    for size in args.sizes:
        runs = r["ours"].get(f"messages.{size}", [])
        p = f"ours.messages.{size}"
        s[f"{p}.e2e_per_s"] = median([x["e2e_per_s"] for x in runs])
        s[f"{p}.e2e_per_s_all"] = [x["e2e_per_s"] for x in runs]
        s[f"{p}.send_calls_per_s"] = median([x["send"]["calls_per_s"] for x in runs])
        s[f"{p}.send_p50_ms"] = median([ms(x["send"]["latency_us"]["p50"]) for x in runs
                                        if x["send"]["latency_us"]])
        s[f"{p}.send_p99_ms"] = median([ms(x["send"]["latency_us"]["p99"]) for x in runs
                                        if x["send"]["latency_us"]])
        s[f"{p}.receive_per_s"] = median([x["receive"]["messages_per_s"] for x in runs])
        s[f"{p}.inbox_wait_p50_ms"] = median([x["receive"]["inbox_wait_ms"]["p50"] for x in runs
                                              if x["receive"]["inbox_wait_ms"]])
        s[f"{p}.messages"] = sum(x["send"]["calls"] for x in runs)
        s[f"{p}.errors"] = sum(x["send"]["errors_total"] for x in runs)
        s[f"{p}.node_cpu_us"] = median([x["node_cpu_us_per_message"] for x in runs])
        runs = r["ours"].get(f"requests.{size}", [])
        p = f"ours.requests.{size}"
        s[f"{p}.per_s"] = median([x["request"]["calls_per_s"] for x in runs])
        s[f"{p}.per_s_all"] = [x["request"]["calls_per_s"] for x in runs]
        s[f"{p}.p50_ms"] = median([ms(x["request"]["latency_us"]["p50"]) for x in runs
                                   if x["request"]["latency_us"]])
        s[f"{p}.p99_ms"] = median([ms(x["request"]["latency_us"]["p99"]) for x in runs
                                   if x["request"]["latency_us"]])
        s[f"{p}.rtt_p50_ms"] = median([ms(x["request"]["rtt_us"]["p50"]) for x in runs
                                       if x["request"]["rtt_us"]])
        s[f"{p}.rtt_p99_ms"] = median([ms(x["request"]["rtt_us"]["p99"]) for x in runs
                                       if x["request"]["rtt_us"]])
        s[f"{p}.requests"] = sum(x["request"]["calls"] for x in runs)
        s[f"{p}.errors"] = sum(x["request"]["errors_total"] + x["request"]["error_answers"]
                               + x["request"]["mismatched"] for x in runs)
        s[f"{p}.node_cpu_us"] = median([x["node_cpu_us_per_request"] for x in runs])
        for kind in ("messages", "requests"):
            runs = r["js"].get(f"{kind}.{size}", [])
            p = f"js.{kind}.{size}"
            s[f"{p}.per_s"] = median([x["per_s"] for x in runs])
            s[f"{p}.per_s_all"] = [x["per_s"] for x in runs]
            s[f"{p}.p50_ms"] = median([x["p50_ms"] for x in runs])
            s[f"{p}.p99_ms"] = median([x["p99_ms"] for x in runs])
            s[f"{p}.errors"] = sum(x["errors"] for x in runs)
            s[f"{p}.cpu_us"] = median([x["cpu_s"] * 1e6 / x["count"] for x in runs
                                       if x["cpu_s"] is not None and x["count"]])
        # Ratios run by run (ours and js measured one after the other), then their median.
        for kind, ours_key in (("messages", "e2e_per_s"), ("requests", "per_s")):
            ours_all = s[f"ours.{kind}.{size}.{ours_key}_all"]
            js_all = s[f"js.{kind}.{size}.per_s_all"]
            ratios = [o / j if o and j else None for o, j in zip(ours_all, js_all)]
            s[f"ratio.{kind}.{size}_all"] = ratios
            s[f"ratio.{kind}.{size}"] = median(ratios)
        ours_l, js_l = s[f"ours.requests.{size}.p50_ms"], s[f"js.requests.{size}.p50_ms"]
        s[f"ratio.requests_p50.{size}"] = ours_l / js_l if ours_l and js_l else None
    inbox = r.get("inbox")
    if inbox:
        ph = inbox["phases"]
        s["inbox.sqlite_limit_per_s"] = ph["a"]["writes_per_s"]
        s["inbox.append_per_s"] = ph["b"]["writes_per_s"]
        s["inbox.group_per_s"] = ph["c"]["writes_per_s"]
        s["ratio.inbox_append_vs_sqlite"] = ph["b"]["vs_limit"]
        s["ratio.inbox_group_vs_sqlite"] = ph["c"]["vs_limit"]
        small = s.get(f"ours.messages.{KIB}.e2e_per_s")
        s["ratio.node_1k_messages_vs_sqlite"] = (small / ph["a"]["writes_per_s"]
                                                 if small and ph["a"]["writes_per_s"] else None)
    s["health"] = r.get("health")
    return s


def fmt(value, spec="{:.0f}"):
    return "-" if value is None else spec.format(value)


def ratio_text(value):
    return "-" if value is None else f"{value:.2f}x"


def mark(ok):
    return "met" if ok else "**not met**"


def report(s, r, args, context, problems, notes):
    out = []
    w = out.append
    w("# Agent messaging benchmark (/daan, agent to agent through the API)\n")
    w(f"{context['cpu']} ×{context['cpus']}, build {context['build_type']}; data directories on "
      f"{context['filesystem']}; CPUs {context['busy_before'] * 100:.0f}% busy before the run and "
      f"{context['busy_after'] * 100:.0f}% after (other work); 1-minute load average "
      f"{context['loadavg_before']:.1f} at the start, {context['loadavg_after']:.1f} at the end "
      f"(this run's processes included); "
      f"{context['elapsed']:.0f} s. "
      f"Medians of {args.runs} run(s), min–max beside them; each case {args.count} operations "
      f"or {args.seconds:g} s, {args.concurrency} in flight.\n")
    w(f"Ours: two nodes on 127.0.0.1, an agent on each (an-agent-load, one gRPC channel over the "
      f"node's Unix socket). js: bench/js/daan_bench.mjs, two js-libp2p processes "
      f"({context['js']}), the same framing, one stream per message, its receiver storing "
      f"nothing.\n")
    w("**One-way messages.** Ours: SendMessage on B to A's peer ID returns once A stored the "
      "message (inbox on disk, synchronous=FULL); the agent on A reads them from "
      "ReceiveMessages and acknowledges them in batches of "
      f"{args.ack_batch}. Messages/s end to end = messages sent / (time from the sender's start "
      "until the agent on A read the last). js: the stream closed by the receiver.\n")
    w("| payload | ours msg/s end to end | min–max | SendMessage calls/s | call p50 ms | "
      "call p99 ms | nodes' CPU µs/msg | js msg/s | min–max | js p50 ms | js p99 ms | "
      "js CPU µs/msg | ours / js |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        o = f"ours.messages.{size}"
        j = f"js.messages.{size}"
        w(f"| {size_name(size)} | {fmt(s[o + '.e2e_per_s'])} | {spread(s[o + '.e2e_per_s_all'])} | "
          f"{fmt(s[o + '.send_calls_per_s'])} | {fmt(s[o + '.send_p50_ms'], '{:.2f}')} | "
          f"{fmt(s[o + '.send_p99_ms'], '{:.2f}')} | {fmt(s[o + '.node_cpu_us'])} | "
          f"{fmt(s[j + '.per_s'])} | {spread(s[j + '.per_s_all'])} | "
          f"{fmt(s[j + '.p50_ms'], '{:.2f}')} | {fmt(s[j + '.p99_ms'], '{:.2f}')} | "
          f"{fmt(s[j + '.cpu_us'])} | **{ratio_text(s[f'ratio.messages.{size}'])}** "
          f"({spread(s[f'ratio.messages.{size}_all'], '{:.1f}')}) |")
    w("")
    waits = ", ".join(f"{size_name(size)} "
                      f"{fmt(s[f'ours.messages.{size}.inbox_wait_p50_ms'])} ms"
                      for size in args.sizes)
    reads = ", ".join(f"{size_name(size)} {fmt(s[f'ours.messages.{size}.receive_per_s'])}/s"
                      for size in args.sizes)
    w(f"The receiving agent read at {reads} (first message to last); a message waited in A's "
      f"inbox for (median) {waits} before the agent read it.\n")
    w("**Requests** (round trips; the serving agent on A echoes the payload). Ours: the "
      "SendRequest call as the agent on B sees it, and the round trip node B measured on the "
      "stream. js: from opening the stream to the whole answer.\n")
    w("| payload | ours req/s | min–max | call p50 ms | call p99 ms | node RTT p50 ms | "
      "node RTT p99 ms | nodes' CPU µs/req | js req/s | min–max | js p50 ms | js p99 ms | "
      "js CPU µs/req | ours / js | p50 ours / js |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        o = f"ours.requests.{size}"
        j = f"js.requests.{size}"
        w(f"| {size_name(size)} | {fmt(s[o + '.per_s'])} | {spread(s[o + '.per_s_all'])} | "
          f"{fmt(s[o + '.p50_ms'], '{:.2f}')} | {fmt(s[o + '.p99_ms'], '{:.2f}')} | "
          f"{fmt(s[o + '.rtt_p50_ms'], '{:.2f}')} | {fmt(s[o + '.rtt_p99_ms'], '{:.2f}')} | "
          f"{fmt(s[o + '.node_cpu_us'])} | {fmt(s[j + '.per_s'])} | "
          f"{spread(s[j + '.per_s_all'])} | {fmt(s[j + '.p50_ms'], '{:.2f}')} | "
          f"{fmt(s[j + '.p99_ms'], '{:.2f}')} | {fmt(s[j + '.cpu_us'])} | "
          f"**{ratio_text(s[f'ratio.requests.{size}'])}** "
          f"({spread(s[f'ratio.requests.{size}_all'], '{:.1f}')}) | "
          f"{ratio_text(s[f'ratio.requests_p50.{size}'])} |")
    w("")
    inbox = r.get("inbox")
    if inbox:
        w(f"**Durable inbox against SQLite's limit** (`{inbox['command']}`, in the directory of "
          f"the nodes' data; {inbox['header']}):\n")
        w("| phase | writes/s | min–max | p50 ms | p99 ms | / SQLite limit |")
        w("|---|---:|---:|---:|---:|---:|")
        for key in "abc":
            ph = inbox["phases"][key]
            w(f"| ({key}) {ph['name']} | {ph['writes_per_s']:.0f} | {ph['range']} | "
              f"{ph['p50_ms']:.2f} | {ph['p99_ms']:.2f} | {ph['vs_limit']:.2f} |")
        w("")
        node_ratio = s.get("ratio.node_1k_messages_vs_sqlite")
        if node_ratio is not None:
            w(f"Node A stored 1 KiB messages end to end at {node_ratio:.2f}x SQLite's "
              f"one-insert-per-transaction rate ({args.concurrency} senders in flight share "
              f"syncs through the inbox's group commit).\n")
    w("## Goals (issue 17)\n")
    w("| goal | target | reached | |")
    w("|---|---|---|---|")
    for size in args.sizes:
        value = s[f"ratio.messages.{size}"]
        w(f"| one-way messages/s vs js-libp2p, {size_name(size)} | ≥ 3x | {ratio_text(value)} | "
          f"{'-' if value is None else mark(value >= GOALS['messages_vs_js'])} |")
    if inbox:
        value = s["ratio.inbox_append_vs_sqlite"]
        w(f"| durable inbox vs SQLite's insert rate, one at a time | ≥ 80% | "
          f"{value * 100:.0f}% | {mark(value >= GOALS['inbox_vs_sqlite'])} |")
    w("")
    health = s.get("health") or {}
    nodes = ", ".join(f"{name} {'running' if h['running'] else '**gone**'} ({h['warnings']} "
                      f"warnings logged)" for name, h in health.items())
    w(f"Problems: {'none' if not problems else '; '.join(problems)}. Nodes after the run: "
      f"{nodes or '-'}.")
    for note in notes:
        w(f"\nNote: {note}")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.path.join(ROOT, "build"),
                        help="build directory to find the binaries in (default: build)")
    parser.add_argument("--binary", help="agentnetwork (default: BUILD/src/agentnetwork)")
    parser.add_argument("--agent-load", help="an-agent-load (default: BUILD/bench/an-agent-load)")
    parser.add_argument("--inbox-bench",
                        help="an-inbox-bench (default: BUILD/bench/an-inbox-bench)")
    parser.add_argument("--sizes", default=f"{KIB},{64 * KIB}", help="payload sizes, bytes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=20000, help="operations per case, at most")
    parser.add_argument("--seconds", type=float, default=10.0, help="time per case, at most")
    parser.add_argument("--concurrency", type=int, default=16, help="operations in flight")
    parser.add_argument("--ack-batch", type=int, default=100,
                        help="messages the receiving agent acknowledges per AckMessages call")
    parser.add_argument("--js-warmup", type=int, default=100,
                        help="js operations before each case, not measured")
    parser.add_argument("--inbox-count", type=int, default=5000)
    parser.add_argument("--inbox-seconds", type=float, default=3.0)
    parser.add_argument("--inbox-runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="one run, 500 operations or 2 s per case: well under a minute")
    parser.add_argument("--skip-js", action="store_true")
    parser.add_argument("--skip-inbox", action="store_true")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 on failed calls, lost or duplicated messages, wrong echoes "
                             "or a node gone (not on the figures)")
    parser.add_argument("--json-out", help="also write the summary and raw results here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.count, args.seconds = 1, 500, 2.0
        args.js_warmup = 50
        args.inbox_count, args.inbox_seconds, args.inbox_runs = 300, 0.5, 1
    # Bounded: every loop below is counted, and every child has a timeout.
    try:
        args.sizes = [int(v) for v in args.sizes.split(",") if v.strip()]
    except ValueError:
        sys.exit("--sizes takes payload sizes in bytes, e.g. 1024,65536")
    if not args.sizes or any(not 0 < size <= 12 * 1024 * KIB for size in args.sizes):
        sys.exit("--sizes: from 1 byte to 12 MiB each")
    args.runs = max(1, min(args.runs, 20))
    args.count = max(10, min(args.count, 1_000_000))
    args.seconds = max(0.5, min(args.seconds, 120.0))
    args.concurrency = max(1, min(args.concurrency, 128))
    args.ack_batch = max(1, min(args.ack_batch, 10_000))
    args.js_warmup = max(0, min(args.js_warmup, 10_000))
    args.inbox_count = max(10, min(args.inbox_count, 1_000_000))
    args.inbox_seconds = max(0.1, min(args.inbox_seconds, 60.0))
    args.inbox_runs = max(1, min(args.inbox_runs, 20))
    args.binary = os.path.abspath(args.binary or os.path.join(args.build, "src", "agentnetwork"))
    args.agent_load = os.path.abspath(args.agent_load or os.path.join(args.build, "bench",
                                                                       "an-agent-load"))
    args.inbox_bench = os.path.abspath(args.inbox_bench or os.path.join(args.build, "bench",
                                                                         "an-inbox-bench"))
    for path, target in ((args.binary, "agentnetwork"), (args.agent_load, "an-agent-load")):
        if not os.access(path, os.X_OK):
            sys.exit(f"no {target} at {path}: cmake --build BUILD --target {target}")

    node_bin = shutil.which("node")
    js_enabled = (not args.skip_js and node_bin is not None and os.path.isfile(JS_BENCH)
                  and ensure_interop_modules(INTEROP, lambda line: print(f"[daan_bench] {line}")))
    workdir = tempfile.mkdtemp(prefix="an-daan-bench-")  # short: api.sock paths stay < 108 bytes
    context = {"cpu": cpu_model(), "cpus": os.cpu_count(), "build_type": build_type(args.binary),
               "filesystem": filesystem_type(workdir),
               "js": js_versions() if js_enabled else "skipped"}
    context["busy_before"] = busy_fraction()
    context["loadavg_before"] = os.getloadavg()[0]
    if context["busy_before"] > 0.10:
        log(f"warning: the CPUs are {context['busy_before'] * 100:.0f}% busy with other work")
    bench = Bench(args, workdir)
    bench.node_bin = node_bin
    bench.js_enabled = js_enabled
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
        sys.exit(f"daan_bench failed: {failed}\n(data directories and logs kept in {workdir})")
    context["elapsed"] = time.monotonic() - begin
    context["loadavg_after"] = os.getloadavg()[0]
    context["busy_after"] = busy_fraction(0.5)
    summary = summarize(bench.results, args)
    print(report(summary, bench.results, args, context, bench.problems, bench.notes))
    print()
    print(json.dumps({"summary": summary, "context": context, "problems": bench.problems}))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"summary": summary, "context": context, "problems": bench.problems,
                       "raw": bench.results}, f, indent=1)
    if args.check and bench.problems:
        sys.exit(f"daan_bench --check: {len(bench.problems)} problem(s)")


if __name__ == "__main__":
    main()
