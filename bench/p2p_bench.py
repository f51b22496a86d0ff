#!/usr/bin/env python3
"""libp2p process-level benchmark: our host (tests/interop/an-p2p) next to js-libp2p
(tests/interop/peer.mjs) and raw TCP (iperf3), measured in the same run. Prints a markdown
report; every figure is the median over --runs repeated runs (min-max beside it).

  1. one stream, one direction (MB/s = 10^6 bytes/s): iperf3, ours->ours, js->js, js->ours,
     ours->js; timed by the dialer from opening the stream to the listener's close after EOF
     (process start and connection setup excluded).
  2. connection + first stream latency: TCP connect start to the first echoed byte of the first
     stream on a fresh connection, on loopback; then in two network namespaces joined by a
     delay line (--delay-ms each way), divided by the RTT the tool's ping measures = round trips.
  3. inbound upgrades per second: an-p2p --connections (TCP + multistream + Noise + yamux, each
     with its own peer ID, --concurrency in flight) against one listener, with the listener's
     CPU time per upgrade.
  4. memory per idle connection: listener VmRSS with --idle-connections connections held by a
     separate an-p2p --hold process, minus VmRSS with none, divided by their number.

Usage: bench/p2p_bench.py [--an-p2p build/tests/an-p2p] [--runs 5] [--quick] [--skip-js]
                          [--skip-netns] [--no-pin]
Needs: node (tests/interop deps installed), iperf3 (apt-get install iperf3), and root for the
namespace part (ip netns, /dev/net/tun; skipped with a note otherwise). With two or more CPUs,
listeners are pinned to CPU 0 and dialers to CPU 1 (taskset), iperf3 likewise.
Loopback and private namespaces only; every process started is stopped before the script exits
and the namespaces are deleted.

The kernel's netem qdisc would be the usual way to add delay; kernels built without it
(CONFIG_NET_SCH_NETEM unset) are common in VMs and containers, so the delay line here is two TUN
devices, one in each namespace, and this script (re-run as --delay-line) forwarding packets
between them after the delay. Packets, the TCP handshake included, are delayed in both directions.
"""
import argparse
import fcntl
import heapq
import json
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
INTEROP = os.path.join(ROOT, "tests", "interop")
MIB = 1024 * 1024

GOALS = {
    "iperf_ratio": 0.70,     # ours->ours >= 70% of raw TCP
    "js_ratio": 3.0,         # ours->ours >= 3x js->js
    "round_trips": 3.0,      # connection + first stream <= 3 RTT
    "upgrades": 2000.0,      # inbound upgrades/s >= 2000
    "idle_kib": 64.0,        # < 64 KiB per idle connection
}


def log(message):
    print(f"[p2p_bench] {message}", file=sys.stderr, flush=True)


# ---- Delay line (run as a child process: --delay-line IF_A IF_B MS) -------------------------

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def delay_line_main(if_a, if_b, delay_ms):
    """Forwards IP packets between two TUN devices after `delay_ms`, until stdin closes. The
    devices disappear with this process."""
    delay = delay_ms / 1000.0
    a, b = open_tun(if_a), open_tun(if_b)
    print("ready", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ, b)
    selector.register(b, selectors.EVENT_READ, a)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, None)
    queue = []
    sequence = 0
    deadline = time.monotonic() + 900  # bounded even if nobody closes stdin
    while time.monotonic() < deadline:
        timeout = 1.0 if not queue else max(0.0, queue[0][0] - time.monotonic())
        for key, _ in selector.select(timeout):
            if key.data is None:
                if not os.read(key.fd, 4096):
                    return
                continue
            for _ in range(256):
                try:
                    packet = os.read(key.fd, 65536)
                except BlockingIOError:
                    break
                sequence += 1
                heapq.heappush(queue, (time.monotonic() + delay, sequence, key.data, packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, fd, packet = heapq.heappop(queue)
            try:
                os.write(fd, packet)
            except OSError:
                pass


# ---- Processes --------------------------------------------------------------------------------

class Proc:
    """A long-running child (listener, holder, delay line): stdin kept open as its stop signal,
    stdout read line by line with deadlines."""

    live = []

    def __init__(self, cmd, name, cwd=None, env=None, stderr_dir=None):
        self.name = name
        self.stderr_path = os.path.join(stderr_dir, f"{name}.{len(Proc.live)}.err")
        self.stderr = open(self.stderr_path, "wb")
        self.popen = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self.stderr)
        self.pid = self.popen.pid
        self.buffer = b""
        Proc.live.append(self)

    def read_line(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.popen.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: no output within {timeout}s{self.stderr_tail()}")
            selector = selectors.DefaultSelector()
            selector.register(fd, selectors.EVENT_READ)
            ready = selector.select(left)
            selector.close()
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{self.name}: exited early (code {self.popen.poll()})"
                                   f"{self.stderr_tail()}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace")

    def read_json(self, timeout):
        line = self.read_line(timeout)
        try:
            return json.loads(line)
        except ValueError:
            raise RuntimeError(f"{self.name}: not JSON: {line!r}{self.stderr_tail()}")

    def stderr_tail(self):
        try:
            with open(self.stderr_path, "rb") as f:
                tail = f.read()[-800:].decode(errors="replace").strip()
            return f"\n  stderr: {tail}" if tail else ""
        except OSError:
            return ""

    def close_stdin(self):
        try:
            self.popen.stdin.close()
        except OSError:
            pass

    def stop(self, grace=5.0):
        """stdin EOF, then SIGTERM, then SIGKILL, each to this PID only."""
        if self.popen.poll() is None:
            self.close_stdin()
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.send_signal(signal.SIGTERM)
                try:
                    self.popen.wait(3)
                except subprocess.TimeoutExpired:
                    self.popen.kill()
                    self.popen.wait(3)
        self.close_stdin()
        try:
            self.popen.stdout.close()
        except OSError:
            pass
        self.stderr.close()
        if self in Proc.live:
            Proc.live.remove(self)

    @classmethod
    def stop_all(cls):
        for proc in list(cls.live):
            try:
                proc.stop(grace=2.0)
            except Exception as error:  # keep stopping the others
                log(f"stopping {proc.name}: {error}")


def run_json(cmd, timeout, cwd=None, env=None, what="dial"):
    """Runs a dialer to completion (killed at `timeout`); its last stdout line as JSON."""
    try:
        result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{what}: no answer within {timeout}s: {' '.join(cmd)}")
    lines = [line for line in result.stdout.decode(errors="replace").splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{what}: no output (code {result.returncode}): "
                           f"{result.stderr.decode(errors='replace')[-800:]}")
    out = json.loads(lines[-1])
    if result.returncode != 0 or "error" in out:
        raise RuntimeError(f"{what}: {out.get('error', 'exit code ' + str(result.returncode))}")
    return out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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


def link_rtt_ms(netns, address, count=5):
    """Kernel RTT of the delay line: time for connect() to a closed port to be refused (SYN out,
    RST back), measured inside the dialer namespace."""
    code = ("import socket,time,statistics\n"
            "s=[]\n"
            f"for _ in range({count}):\n"
            "    c=socket.socket(); t=time.perf_counter()\n"
            f"    try: c.connect(('{address}', 9))\n"
            "    except OSError: pass\n"
            "    s.append((time.perf_counter()-t)*1000); c.close()\n"
            "print(statistics.median(s))\n")
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code],
                         stdout=subprocess.PIPE, timeout=30, check=True)
    return float(out.stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(values):
    return statistics.median(values) if values else float("nan")


def spread(values, fmt="{:.0f}"):
    if not values:
        return "-"
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}"


# ---- The benchmark ------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.tool = os.path.abspath(args.an_p2p)
        self.node = shutil.which("node")
        self.env = dict(os.environ, PEER_QUIET="1")
        pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
        self.listen_cpu = ["taskset", "-c", "0"] if pin else []
        self.dial_cpu = ["taskset", "-c", "1"] if pin else []
        self.pinned = bool(pin)
        self.js = not args.skip_js and self.node is not None and os.path.isdir(
            os.path.join(INTEROP, "node_modules"))
        self.results = {}
        self.notes = []

    # -- commands
    def ours(self, *words):
        return [self.tool, *words]

    def js_cmd(self, *words):
        return [self.node, "--import", "./polyfill.mjs", "peer.mjs", *words]

    def start_listener(self, kind, listen="/ip4/127.0.0.1/tcp/0", netns=None):
        prefix = ["ip", "netns", "exec", netns] if netns else []
        if kind == "ours":
            cmd = prefix + self.listen_cpu + self.ours("listen", "--listen", listen)
            proc = Proc(cmd, "ours-listen", env=self.env, stderr_dir=self.workdir)
        else:
            cmd = prefix + self.listen_cpu + self.js_cmd("listen", "--listen", listen,
                                                         "--max-connections", "5000")
            proc = Proc(cmd, "js-listen", cwd=INTEROP, env=self.env, stderr_dir=self.workdir)
        hello = proc.read_json(timeout=30)
        proc.addr = hello["addrs"][0]
        return proc

    def dial(self, kind, addr, *words, timeout=120, netns=None):
        prefix = ["ip", "netns", "exec", netns] if netns else []
        if kind == "ours":
            cmd = prefix + self.dial_cpu + self.ours("dial", addr, *words)
            return run_json(cmd, timeout, env=self.env, what=f"ours dial {' '.join(words)}")
        cmd = prefix + self.dial_cpu + self.js_cmd("dial", addr, *words)
        return run_json(cmd, timeout, cwd=INTEROP, env=self.env, what=f"js dial {' '.join(words)}")

    # -- 1. throughput
    def iperf3(self, seconds):
        port = free_port()
        server = Proc(self.listen_cpu + ["iperf3", "-s", "-1", "-p", str(port)], "iperf3-server",
                      stderr_dir=self.workdir)
        try:
            out = None
            for _ in range(50):  # the server needs a moment before it accepts
                time.sleep(0.1)
                try:
                    result = subprocess.run(self.dial_cpu + ["iperf3", "-c", "127.0.0.1", "-p",
                                                             str(port), "-t", str(seconds), "-J"],
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                            timeout=seconds + 30)
                except subprocess.TimeoutExpired:
                    raise RuntimeError("iperf3 client timed out")
                out = json.loads(result.stdout or b"{}")
                if "error" not in out:
                    break
            if out is None or "error" in out:
                raise RuntimeError(f"iperf3: {out and out.get('error')}")
            return out["end"]["sum_received"]["bits_per_second"] / 8 / 1e6
        finally:
            server.stop(grace=3)

    def throughput(self, ours_l, js_l):
        a = self.args
        paths = [("ours→ours", "ours", ours_l, a.bytes)]
        if self.js:
            paths += [("js→js", "js", js_l, a.js_bytes), ("js→ours", "js", ours_l, a.js_bytes),
                      ("ours→js", "ours", js_l, a.js_bytes)]
        log("throughput: warm-up")
        for _, kind, listener, _ in paths:
            self.dial(kind, listener.addr, "--send", str(16 * MIB))
        samples = {name: [] for name, *_ in paths}
        samples["iperf3"] = []
        for run in range(a.runs):
            log(f"throughput: run {run + 1}/{a.runs}")
            samples["iperf3"].append(self.iperf3(a.iperf_seconds))
            for name, kind, listener, size in paths:
                out = self.dial(kind, listener.addr, "--send", str(size), "--timeout", "120")
                samples[name].append(out["send"]["bytes"] / out["send"]["seconds"] / 1e6)
        self.results["throughput"] = samples

    # -- 2. latency
    def latency_loopback(self, ours_l, js_l):
        a = self.args
        pairs = [("ours→ours", "ours", ours_l)] + ([("js→js", "js", js_l)] if self.js else [])
        samples = {name: [] for name, *_ in pairs}
        for run in range(a.runs):
            log(f"latency (loopback): run {run + 1}/{a.runs}")
            for name, kind, listener in pairs:
                out = self.dial(kind, listener.addr, "--connect-latency", str(a.latency_count))
                samples[name].append(median(out["connect_latency_ms"]))
        self.results["latency"] = samples

    def latency_delayed(self):
        a = self.args
        if os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("ip"):
            self.notes.append("round trips: skipped (needs root, /dev/net/tun and iproute2)")
            return
        tag = f"{os.getpid() % 100000}"
        ns_l, ns_d = f"anbench{tag}l", f"anbench{tag}d"
        if_l, if_d = f"anb{tag}l", f"anb{tag}d"
        made = []
        line = None
        listeners = []
        try:
            line = Proc([sys.executable, os.path.abspath(__file__), "--delay-line", if_l, if_d,
                         str(a.delay_ms)], "delay-line", stderr_dir=self.workdir)
            if line.read_line(timeout=10) != "ready":
                raise RuntimeError("delay line did not start")
            for ns in (ns_l, ns_d):
                subprocess.run(["ip", "netns", "add", ns], check=True)
                made.append(ns)
            setup = [
                ["ip", "link", "set", if_l, "netns", ns_l],
                ["ip", "link", "set", if_d, "netns", ns_d],
                ["ip", "-n", ns_l, "addr", "add", "10.77.0.1", "peer", "10.77.0.2", "dev", if_l],
                ["ip", "-n", ns_d, "addr", "add", "10.77.0.2", "peer", "10.77.0.1", "dev", if_d],
                ["ip", "-n", ns_l, "link", "set", "lo", "up"],
                ["ip", "-n", ns_d, "link", "set", "lo", "up"],
                ["ip", "-n", ns_l, "link", "set", if_l, "up"],
                ["ip", "-n", ns_d, "link", "set", if_d, "up"],
            ]
            for cmd in setup:
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            kinds = ["ours"] + (["js"] if self.js else [])
            samples = {k: {"latency": [], "rtt": [], "link": []} for k in kinds}
            for kind in kinds:
                listener = self.start_listener(kind, "/ip4/10.77.0.1/tcp/0", netns=ns_l)
                listeners.append(listener)
                for run in range(a.runs):
                    log(f"round trips ({kind}→{kind}, {a.delay_ms} ms each way): run "
                        f"{run + 1}/{a.runs}")
                    out = self.dial(kind, listener.addr, "--connect-latency",
                                    str(a.delay_latency_count), "--ping", "5", netns=ns_d,
                                    timeout=60)
                    samples[kind]["latency"].append(median(out["connect_latency_ms"]))
                    samples[kind]["rtt"].append(median(out["ping_rtts_ms"]))
                    samples[kind]["link"].append(link_rtt_ms(ns_d, "10.77.0.1"))
                listener.stop()
            self.results["round_trips"] = samples
        finally:
            for listener in listeners:
                listener.stop(grace=2)
            if line is not None:
                line.stop(grace=3)
            for ns in made:
                subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    # -- 3. upgrades
    def upgrades(self, ours_l, js_l):
        a = self.args
        targets = [("ours", ours_l, a.upgrades)]
        if self.js:
            targets.append(("js", js_l, a.js_upgrades))
        samples = {kind: {"rate": [], "listener_us": [], "dialer_us": [], "listener_util": []}
                   for kind, *_ in targets}
        for run in range(a.runs):
            log(f"upgrades: run {run + 1}/{a.runs}")
            for kind, listener, count in targets:
                before_l = cpu_seconds(listener.pid)
                before_d = children_cpu()
                start = time.monotonic()
                out = self.dial("ours", listener.addr, "--connections", str(count),
                                "--concurrency", str(a.concurrency), timeout=180)
                wall = time.monotonic() - start
                listener_cpu = cpu_seconds(listener.pid) - before_l
                dialer_cpu = children_cpu() - before_d
                c = out["connections"]
                samples[kind]["rate"].append(c["ok"] / c["seconds"])
                samples[kind]["listener_us"].append(listener_cpu / count * 1e6)
                samples[kind]["dialer_us"].append(dialer_cpu / count * 1e6)
                samples[kind]["listener_util"].append(listener_cpu / wall)
        self.results["upgrades"] = samples

    # -- 4. memory
    def memory(self):
        a = self.args
        kinds = ["ours"] + (["js"] if self.js else [])
        samples = {k: {"idle": [], "held": [], "after": [], "per_conn": [], "fds": []}
                   for k in kinds}
        for run in range(a.mem_runs):
            for kind in kinds:
                log(f"memory ({kind} listener, {a.idle_connections} connections): run "
                    f"{run + 1}/{a.mem_runs}")
                listener = self.start_listener(kind)
                holder = None
                try:
                    self.dial("ours", listener.addr, "--ping", "1")  # warm: crypto, identify
                    time.sleep(1.0)
                    idle = rss_kib(listener.pid)
                    fds = fd_count(listener.pid)
                    holder = Proc(self.dial_cpu + self.ours(
                        "dial", listener.addr, "--hold", str(a.idle_connections),
                        "--timeout", "300"), "holder", env=self.env, stderr_dir=self.workdir)
                    status = holder.read_json(timeout=240)
                    if status.get("failed", 1) != 0:
                        raise RuntimeError(f"hold: {status}; {holder.read_line(10)}")
                    time.sleep(2.0)  # identify and window updates settle
                    held = rss_kib(listener.pid)
                    fds = fd_count(listener.pid) - fds
                    holder.close_stdin()
                    holder.read_json(timeout=60)
                    holder.stop()
                    holder = None
                    time.sleep(1.5)
                    after = rss_kib(listener.pid)
                finally:
                    if holder is not None:
                        holder.stop(grace=2)
                    listener.stop()
                s = samples[kind]
                s["idle"].append(idle)
                s["held"].append(held)
                s["after"].append(after)
                s["fds"].append(fds)
                s["per_conn"].append((held - idle) / a.idle_connections)
        self.results["memory"] = samples

    # -- report
    def report(self, elapsed):
        a = self.args
        r = self.results
        out = []
        w = out.append
        w("# libp2p benchmark: agentnetwork host vs js-libp2p vs raw TCP\n")
        w(f"Medians of {a.runs} runs (memory: {a.mem_runs}); min–max of the run values beside "
          f"them. Total time {elapsed:.0f} s.\n")
        w("| | |\n|---|---|")
        w(f"| machine | {cpu_model()}, {os.cpu_count()} CPUs, Linux {platform.release()} |")
        w(f"| our tool | `{os.path.relpath(self.tool, ROOT)}` ({build_type(self.tool)}) |")
        w(f"| js-libp2p | {js_versions() if self.js else 'skipped'} on node "
          f"{node_version(self.node) if self.js else '-'} |")
        w(f"| iperf3 | {iperf_version()} |")
        w(f"| CPUs | {'listener pinned to CPU 0, dialer to CPU 1 (iperf3 too)' if self.pinned else 'not pinned'} |")
        w(f"| other load | CPUs {self.load_before * 100:.0f}% busy before the run, "
          f"{self.load_after * 100:.0f}% after (other processes; the figures assume ~0%) |")
        w("")

        if "throughput" in r:
            t = r["throughput"]
            w("## 1. One stream, one direction (MB/s, 10^6 bytes/s)\n")
            w(f"Transfer per run: ours→ours {a.bytes // MIB} MiB, paths with js {a.js_bytes // MIB}"
              f" MiB, iperf3 {a.iperf_seconds} s. Timed by the dialer from opening the stream to"
              f" the listener's close after EOF.\n")
            w("| path | MB/s | min–max | vs iperf3 (same run) | vs js→js (same run) |")
            w("|---|---:|---:|---:|---:|")
            for name in ["iperf3", "ours→ours", "js→js", "js→ours", "ours→js"]:
                if name in t:
                    label = "raw TCP (iperf3)" if name == "iperf3" else name
                    vs_js = (f"{median(ratios(t[name], t['js→js'])):.2f}x" if "js→js" in t
                             else "-")
                    w(f"| {label} | {median(t[name]):.0f} | {spread(t[name])} | "
                      f"{median(ratios(t[name], t['iperf3'])) * 100:.0f}% | {vs_js} |")
            w("")
        if "latency" in r or "round_trips" in r:
            w("## 2. Connection + first stream latency\n")
            w("TCP connect start to the first echoed byte of the first stream (/echo/1.0.0) on a "
              "fresh connection; median per run, then the median of those.\n")
        if "latency" in r:
            w(f"Loopback, {a.latency_count} connections per run:\n")
            w("| path | ms | min–max |")
            w("|---|---:|---:|")
            for name, values in r["latency"].items():
                w(f"| {name} | {median(values):.2f} | {spread(values, '{:.2f}')} |")
            w("")
        if "round_trips" in r:
            w(f"Two namespaces joined by a {a.delay_ms:g} ms-each-way delay line, "
              f"{a.delay_latency_count} connections per run. Round trips = latency / RTT, with "
              f"the RTT from the tool's own ping on an open connection (libp2p ping, 5 pings), "
              f"and, as a check, from the kernel (a refused TCP connect in the dialer's "
              f"namespace):\n")
            w("| path | latency ms | tool ping RTT ms | round trips | min–max | kernel RTT ms | "
              "round trips by kernel RTT |")
            w("|---|---:|---:|---:|---:|---:|---:|")
            for kind, s in r["round_trips"].items():
                trips = ratios(s["latency"], s["rtt"])
                by_link = ratios(s["latency"], s["link"])
                w(f"| {kind}→{kind} | {median(s['latency']):.1f} | {median(s['rtt']):.1f} | "
                  f"{median(trips):.2f} | {spread(trips, '{:.2f}')} | {median(s['link']):.1f} | "
                  f"{median(by_link):.2f} |")
            w("")
        if "upgrades" in r:
            w("## 3. Inbound upgrades per second\n")
            w(f"One an-p2p dialer, {a.concurrency} upgrades in flight, each with its own peer ID: "
              f"TCP, multistream, Noise XX, yamux, done when the listener's first frame (its "
              f"identify stream) arrives, then closed. {a.upgrades} upgrades per run against our "
              f"listener, {a.js_upgrades} against js. CPU from /proc and getrusage.\n")
            w("| listener | upgrades/s | min–max | listener CPU µs/upgrade | listener CPU busy | "
              "upgrades per listener CPU-s | dialer CPU µs/upgrade (incl. making its keys) |")
            w("|---|---:|---:|---:|---:|---:|---:|")
            for kind, s in r["upgrades"].items():
                us = median(s["listener_us"])
                w(f"| {kind} | {median(s['rate']):.0f} | {spread(s['rate'])} | {us:.0f} | "
                  f"{median(s['listener_util']) * 100:.0f}% | {1e6 / us:.0f} | "
                  f"{median(s['dialer_us']):.0f} |")
            w("")
        if "memory" in r:
            w("## 4. Memory per idle connection\n")
            w(f"Listener VmRSS after a warm-up dial, then with {a.idle_connections} idle "
              f"connections (distinct peers, identified) held by a separate an-p2p --hold "
              f"process, then 1.5 s after they closed.\n")
            w("| listener | RSS idle KiB | RSS held KiB | KiB per connection | min–max | "
              "RSS after close KiB | fds added |")
            w("|---|---:|---:|---:|---:|---:|---:|")
            for kind, s in r["memory"].items():
                w(f"| {kind} | {median(s['idle']):.0f} | {median(s['held']):.0f} | "
                  f"{median(s['per_conn']):.1f} | {spread(s['per_conn'], '{:.1f}')} | "
                  f"{median(s['after']):.0f} | {median(s['fds']):.0f} |")
            w("")

        w("## Goals\n")
        w("| goal | target | reached | |")
        w("|---|---|---|---|")
        if "throughput" in r:
            t = r["throughput"]
            ratio = median(ratios(t["ours→ours"], t["iperf3"]))
            w(f"| one stream vs raw TCP | ≥ 70% | {ratio * 100:.0f}% | {mark(ratio >= GOALS['iperf_ratio'])} |")
            if "js→js" in t:
                ratio = median(ratios(t["ours→ours"], t["js→js"]))
                w(f"| one stream vs js-libp2p | ≥ 3x | {ratio:.1f}x | {mark(ratio >= GOALS['js_ratio'])} |")
        if "round_trips" in r:
            s = r["round_trips"]["ours"]
            trips = median(ratios(s["latency"], s["rtt"]))
            w(f"| connection + first stream | ≤ 3 round trips | {trips:.2f} | {mark(trips <= GOALS['round_trips'] + 0.25)} |")
        if "upgrades" in r:
            rate = median(r["upgrades"]["ours"]["rate"])
            capacity = 1e6 / median(r["upgrades"]["ours"]["listener_us"])
            w(f"| inbound upgrades | ≥ 2,000/s | {rate:.0f}/s measured, {capacity:.0f} per "
              f"listener CPU-second | {mark(rate >= GOALS['upgrades'])} |")
        if "memory" in r:
            kib = median(r["memory"]["ours"]["per_conn"])
            w(f"| memory per idle connection | < 64 KiB | {kib:.1f} KiB | {mark(kib < GOALS['idle_kib'])} |")
        w("")
        for note in self.notes:
            w(f"Note: {note}\n")
        return "\n".join(out)


def ratios(values, bases):
    """Ratio per run (both measured in the same run), so that load that comes and goes during
    the benchmark cancels out."""
    return [v / b for v, b in zip(values, bases)]


def mark(ok):
    return "met" if ok else "**not met**"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def build_type(tool):
    cache = os.path.join(os.path.dirname(os.path.dirname(tool)), "CMakeCache.txt")
    try:
        with open(cache) as f:
            match = re.search(r"^CMAKE_BUILD_TYPE:STRING=(.*)$", f.read(), re.M)
            if match:
                return f"CMAKE_BUILD_TYPE={match.group(1)}"
    except OSError:
        pass
    return "build type unknown"


def js_versions():
    names = ["libp2p", "@chainsafe/libp2p-noise", "@chainsafe/libp2p-yamux", "@libp2p/tcp"]
    parts = []
    for name in names:
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


def iperf_version():
    try:
        out = subprocess.run(["iperf3", "--version"], stdout=subprocess.PIPE, timeout=10)
        return out.stdout.decode().splitlines()[0]
    except (OSError, subprocess.TimeoutExpired, IndexError):
        return "?"


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--delay-line":
        delay_line_main(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--an-p2p", default=os.path.join(ROOT, "build", "tests", "an-p2p"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mem-runs", type=int, default=3)
    parser.add_argument("--bytes", type=int, default=256 * MIB, help="ours→ours per run")
    parser.add_argument("--js-bytes", type=int, default=64 * MIB, help="paths with js, per run")
    parser.add_argument("--iperf-seconds", type=int, default=5)
    parser.add_argument("--latency-count", type=int, default=20)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--delay-latency-count", type=int, default=5)
    parser.add_argument("--upgrades", type=int, default=2000)
    parser.add_argument("--js-upgrades", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--idle-connections", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="2 runs, smaller transfers")
    parser.add_argument("--skip-js", action="store_true")
    parser.add_argument("--skip-netns", action="store_true")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--only", default="throughput,latency,roundtrips,upgrades,memory",
                        help="comma-separated sections")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.mem_runs = 2, 1
        args.bytes, args.js_bytes, args.iperf_seconds = 64 * MIB, 16 * MIB, 2
        args.upgrades, args.js_upgrades = 500, 200
    # Bounded: every loop below is counted, and each child has a timeout.
    args.runs = max(1, min(args.runs, 50))
    args.mem_runs = max(1, min(args.mem_runs, 20))
    args.concurrency = max(1, min(args.concurrency, 64))
    if not os.access(args.an_p2p, os.X_OK):
        sys.exit(f"no an-p2p at {args.an_p2p}: cmake --build build --target an-p2p")
    sections = set(args.only.split(","))
    if not shutil.which("iperf3") and "throughput" in sections:
        sys.exit("iperf3 is missing: apt-get install iperf3")

    workdir = tempfile.mkdtemp(prefix="an-p2p-bench-")
    bench = Bench(args, workdir)
    if not bench.js:
        bench.notes.append("js-libp2p paths skipped (--skip-js, or node / tests/interop/node_modules missing)")
    bench.load_before = busy_fraction()
    if bench.load_before > 0.10:
        log(f"warning: the CPUs are {bench.load_before * 100:.0f}% busy with other work")
    begin = time.monotonic()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    try:
        ours_l = js_l = None
        if sections & {"throughput", "latency", "upgrades"}:
            ours_l = bench.start_listener("ours")
            if bench.js:
                js_l = bench.start_listener("js")
        if "throughput" in sections:
            bench.throughput(ours_l, js_l)
        if "latency" in sections:
            bench.latency_loopback(ours_l, js_l)
        if "roundtrips" in sections:
            if args.skip_netns:
                bench.notes.append("round trips: skipped (--skip-netns)")
            else:
                bench.latency_delayed()
        if "upgrades" in sections:
            bench.upgrades(ours_l, js_l)
        for listener in (ours_l, js_l):
            if listener is not None:
                listener.stop()
        if "memory" in sections:
            bench.memory()
    finally:
        Proc.stop_all()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - begin
    bench.load_after = busy_fraction()
    print(bench.report(elapsed))


if __name__ == "__main__":
    main()
