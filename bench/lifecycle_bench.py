#!/usr/bin/env python3
"""Lifecycle benchmark: how long `start` (until ready), `status` and `stop` take, and the
resident memory of an idle node. Medians over repeated runs, next to the cost of starting a
trivial process (`true`) measured in the same run, which is the floor for any CLI command.

Usage: bench/lifecycle_bench.py [--binary build/src/agentnetwork] [--runs 20]
Loopback only; every node started is stopped before the script exits.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(cmd, **kwargs):
    begin = time.perf_counter()
    result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    elapsed = time.perf_counter() - begin
    return result, elapsed


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_pid(data_dir):
    with open(os.path.join(data_dir, "node.pid")) as pid_file:
        return int(pid_file.read().strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="build/src/agentnetwork")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    runs = max(3, min(args.runs, 500))

    baseline, start, status, stop, rss = [], [], [], [], []
    true_path = shutil.which("true")
    workdir = tempfile.mkdtemp(prefix="an-bench-")
    data = os.path.join(workdir, "data")
    try:
        # The key is created once, as an operator's node would have it.
        subprocess.run([binary, "keygen", "-data", data], check=True, stdout=subprocess.DEVNULL)
        for _ in range(runs):
            _, elapsed = timed([true_path])
            baseline.append(elapsed)
            result, elapsed = timed([binary, "start", "-data", data, "-listen", "/ip4/127.0.0.1/tcp/0"])
            if result.returncode != 0:
                sys.exit(f"start failed: {result.stderr.decode()}")
            start.append(elapsed)
            result, elapsed = timed([binary, "status", "-data", data])
            if result.returncode != 0:
                sys.exit(f"status failed: {result.stderr.decode()}")
            status.append(elapsed)
            if len(rss) < 5:
                time.sleep(1.0)  # let the node settle into idle
                rss.append(rss_kib(read_pid(data)))
            result, elapsed = timed([binary, "stop", "-data", data])
            if result.returncode != 0:
                sys.exit(f"stop failed: {result.stderr.decode()}")
            stop.append(elapsed)
    finally:
        subprocess.run([binary, "stop", "-data", data, "-timeout", "5"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(workdir, ignore_errors=True)

    floor = statistics.median(baseline) * 1000

    def row(name, samples):
        median = statistics.median(samples) * 1000
        print(f"| {name} | {median:.2f} ms | {min(samples) * 1000:.2f} ms | "
              f"{max(samples) * 1000:.2f} ms | {median / floor:.1f}x |")

    print(f"runs: {runs}")
    print("| operation | median | min | max | median / `true` |")
    print("|---|---|---|---|---|")
    row("`true` (process start floor)", baseline)
    row("`start` until ready", start)
    row("`status`", status)
    row("`stop` until gone", stop)
    print(f"\nidle node RSS (median of {len(rss)}): {statistics.median(rss) / 1024:.2f} MiB")


if __name__ == "__main__":
    main()
