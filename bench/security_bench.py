#!/usr/bin/env python3
"""Security protocols side by side: TLS 1.3 (/tls/1.0.0) next to Noise (/noise), in our host and
in js-libp2p (tests/interop/peer.mjs --security, @libp2p/tls and @chainsafe/libp2p-noise) as
the peer implementation, in the same run, interleaved run by run, on loopback. Prints a
markdown report with TLS/Noise ratios for both; every figure is the median over --runs runs
(min-max beside it).

  1. one stream, one direction (MB/s = 10^6 bytes/s): an-p2p dial --send BYTES to an an-p2p
     listener offering only that protocol (yamux over it).
  2. connection + first stream latency: TCP connect start to the first echoed byte of the first
     stream on a fresh connection (an-p2p --connect-latency).
  3. inbound upgrades per second with --concurrency in flight (TCP, multistream, handshake,
     muxer; each dial with its own peer ID), with the listener's CPU time per upgrade: the
     handshake cost.

Usage: bench/security_bench.py [--an-p2p build/tests/an-p2p] [--runs 5] [--quick] [--no-pin]
                               [--skip-js]
Needs node with the tests/interop dependencies installed (npm ci there) for the js side.
With two or more CPUs, listeners are pinned to CPU 0 and dialers to CPU 1 (taskset).
"""
import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import p2p_bench as common  # noqa: E402  (Proc, run_json, cpu_seconds, median, spread, ...)

MIB = 1024 * 1024
PROTOCOLS = [("Noise", "/noise", "noise"), ("TLS", "/tls/1.0.0", "tls")]
IMPLEMENTATIONS = ["ours", "js"]


class SecurityBench:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.tool = os.path.abspath(args.an_p2p)
        pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset")
        self.listen_cpu = ["taskset", "-c", "0"] if pin else []
        self.dial_cpu = ["taskset", "-c", "1"] if pin else []
        self.pinned = bool(pin)
        self.node = shutil.which("node")
        self.js = not args.skip_js and self.node is not None and os.path.isdir(
            os.path.join(common.INTEROP, "node_modules"))
        self.kinds = ["ours"] + (["js"] if self.js else [])
        self.results = {(kind, name): {"throughput": [], "latency": [], "rate": [],
                                       "listener_us": [], "dialer_us": []}
                        for kind in self.kinds for name, *_ in PROTOCOLS}

    def command(self, kind, *words):
        if kind == "ours":
            return [self.tool, *words]
        return [self.node, "--import", "./polyfill.mjs", "peer.mjs", *words]

    def security_words(self, kind, protocol, js_name):
        return ["--security", protocol if kind == "ours" else js_name]

    def listener(self, kind, protocol, js_name):
        words = ["listen", "--listen", "/ip4/127.0.0.1/tcp/0"]
        if kind == "js":
            words += ["--max-connections", "5000"]
        cmd = self.listen_cpu + self.command(kind, *words,
                                             *self.security_words(kind, protocol, js_name))
        proc = common.Proc(cmd, f"{kind}-listen", cwd=common.INTEROP if kind == "js" else None,
                           env=dict(os.environ, PEER_QUIET="1"), stderr_dir=self.workdir)
        proc.addr = proc.read_json(timeout=30)["addrs"][0]
        return proc

    def dial(self, kind, protocol, js_name, addr, *words, timeout=180):
        cmd = self.dial_cpu + self.command(kind, "dial", addr, *words,
                                           *self.security_words(kind, protocol, js_name))
        return common.run_json(cmd, timeout, cwd=common.INTEROP if kind == "js" else None,
                               env=dict(os.environ, PEER_QUIET="1"),
                               what=f"{kind} dial {protocol} {' '.join(words)}")

    def run(self):
        a = self.args
        listeners = {(kind, name): self.listener(kind, protocol, js_name)
                     for kind in self.kinds for name, protocol, js_name in PROTOCOLS}
        try:
            for kind in self.kinds:  # warm-up
                for name, protocol, js_name in PROTOCOLS:
                    self.dial(kind, protocol, js_name, listeners[(kind, name)].addr, "--send",
                              str(16 * MIB))
            for run in range(a.runs):
                common.log(f"run {run + 1}/{a.runs}")
                for kind in self.kinds:
                    for name, protocol, js_name in PROTOCOLS:
                        self.measure(kind, name, protocol, js_name, listeners[(kind, name)])
        finally:
            for proc in listeners.values():
                proc.stop()

    def measure(self, kind, name, protocol, js_name, listener):
        a = self.args
        r = self.results[(kind, name)]
        size = a.bytes if kind == "ours" else a.js_bytes
        out = self.dial(kind, protocol, js_name, listener.addr, "--send", str(size))
        r["throughput"].append(out["send"]["bytes"] / out["send"]["seconds"] / 1e6)
        out = self.dial(kind, protocol, js_name, listener.addr, "--connect-latency",
                        str(a.latency_count))
        r["latency"].append(common.median(out["connect_latency_ms"]))
        # Upgrades: always our dialer (--connections), against this implementation's listener.
        before_l = common.cpu_seconds(listener.pid)
        before_d = common.children_cpu()
        out = self.dial("ours", protocol, js_name, listener.addr, "--connections",
                        str(a.upgrades), "--concurrency", str(a.concurrency))
        c = out["connections"]
        if c["failed"]:
            raise RuntimeError(f"{kind} {name}: {c['failed']} upgrades failed")
        r["rate"].append(c["ok"] / c["seconds"])
        r["listener_us"].append((common.cpu_seconds(listener.pid) - before_l) / a.upgrades * 1e6)
        r["dialer_us"].append((common.children_cpu() - before_d) / a.upgrades * 1e6)

    def report(self, elapsed):
        a = self.args
        lines = [
            "## Security protocols: TLS 1.3 next to Noise (loopback)",
            "",
            f"{platform.machine()}, {common.cpu_model()}, {os.cpu_count()} CPUs"
            f"{', listener on CPU 0 and dialer on CPU 1' if self.pinned else ''}; "
            f"{a.runs} runs, {elapsed:.0f} s; build: {common.build_type(self.tool)}"
            f"{'; js: ' + common.js_versions() if self.js else '; js skipped'}.",
            "",
            "| measure | impl. | Noise | TLS | TLS / Noise |",
            "|---|---|---|---|---|",
        ]

        def row(label, key, fmt="{:.0f}"):
            for kind in self.kinds:
                noise, tls = self.results[(kind, "Noise")], self.results[(kind, "TLS")]
                n, t = common.median(noise[key]), common.median(tls[key])
                lines.append(f"| {label} | {kind} | {fmt.format(n)} "
                             f"({common.spread(noise[key], fmt)}) | {fmt.format(t)} "
                             f"({common.spread(tls[key], fmt)}) | {t / n:.2f} |")

        row(f"one stream, MB/s (ours {a.bytes // MIB} MiB, js {a.js_bytes // MIB} MiB)",
            "throughput")
        row(f"connection + first stream, ms (median of {a.latency_count})", "latency", "{:.2f}")
        row(f"inbound upgrades/s ({a.upgrades}, {a.concurrency} in flight)", "rate")
        row("listener CPU per upgrade, µs", "listener_us")
        row("dialer (ours) CPU per upgrade, µs", "dialer_us")
        return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--an-p2p", default=os.path.join(common.ROOT, "build", "tests", "an-p2p"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--bytes", type=int, default=1024 * MIB)
    parser.add_argument("--js-bytes", type=int, default=256 * MIB)
    parser.add_argument("--latency-count", type=int, default=50)
    parser.add_argument("--upgrades", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 runs")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--skip-js", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.bytes, args.js_bytes = 2, 128 * MIB, 32 * MIB
        args.latency_count, args.upgrades = 10, 300
    if not os.path.exists(args.an_p2p):
        sys.exit(f"no {args.an_p2p}: build the an-p2p target first")
    workdir = tempfile.mkdtemp(prefix="an-security-bench-")
    start = time.monotonic()
    bench = SecurityBench(args, workdir)
    try:
        bench.run()
    finally:
        common.Proc.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    print(bench.report(time.monotonic() - start))


if __name__ == "__main__":
    main()
