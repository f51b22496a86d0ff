#!/usr/bin/env python3
"""Soak benchmark (issue 16): one node under honest and hostile load for --duration seconds.

Honest load (tests/hostile/hostile_peer.mjs `honest`, js-libp2p): a ping every --ping-ms on a
long-lived connection, a DHT lookup (kad-dht client, getClosestPeers of a random key through the
node) every --dht-ms, and a fresh connection (dial, ping, hang up) every --fresh-ms.
Hostile load, in waves one after the other with --pause seconds between them, round robin:
  sybils     --sybils ordinary identities that identify and leave, then --maximal-sybils with
             the largest identify answer the node accepts (10 x 8 KiB of protocol names)
  handshakes --stalled TCP connections from 127.0.0.2 sending half a multistream header, held
             for --stall-s seconds (or until the node closes them)
  streams    one peer opens --flood-streams streams (at most 500 held), holds them 5 s, leaves
  dht        4 peers flood --dht-providers provider records, --dht-records /pk records and
             --dht-queries queries
  oversized  --oversized identities with identify answers over every limit
Every --sample-s seconds it records the node's RSS (VmRSS), descriptors (/proc/PID/fd) and, for
the pings of that interval, their count, failures, p50 and p99; the fresh dials and DHT lookups
likewise. It writes soak.csv (one row per sample), soak.json (samples, waves, summary) and
soak.png (RSS and descriptors over time, ping p50/p99 per interval, the waves shaded) to
--out (default: a new soak-YYYYmmdd-HHMMSS directory here), and prints a markdown summary.

--check (the CI run, `--duration 60 --check`) exits 1 when
  - more than --ping-failure-budget of the honest pings failed (default 0.5%: the pings share
    two cores with every attacker, and a ping is only late, not lost, when they are busy), or
  - RSS grew by more than --rss-growth-bound-mib (default 16) from the middle of the run to its
    end (median of the samples of the last 10% against the median of those around the middle):
    after the first half every store the hostile load fills must be full, so a node whose state
    is bounded stays flat; an unbounded peer store grows by about 100 MiB a minute here.

Usage: bench/soak_bench.py [--duration 1800] [--binary build/src/agentnetwork] [--check]
Needs node and npm (tests/hostile: `npm ci`, done here when missing) and, for the plot,
matplotlib (Debian: python3-matplotlib). Loopback only; everything started is stopped at the
end, also on Ctrl+C.
"""
import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
HOSTILE = os.path.join(ROOT, "tests", "hostile")
sys.path.insert(0, HOSTILE)
import hostile_support as hs  # noqa: E402

MIB = hs.MIB
WAVES = ["sybils", "handshakes", "streams", "dht", "oversized"]


def log(message):
    sys.stderr.write("[soak %s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


class Node:
    """`agentnetwork start` in a temporary data directory; `stop` at the end."""

    def __init__(self, binary, workdir):
        self.binary = binary
        self.data = os.path.join(workdir, "node")
        env = hs.harness.base_env()
        out = subprocess.run([binary, "start", "-data", self.data, "-listen",
                              "/ip4/127.0.0.1/tcp/0"], env=env, capture_output=True, text=True,
                             timeout=60)
        if out.returncode != 0:
            raise RuntimeError("start failed: %s%s" % (out.stdout, out.stderr))
        status = subprocess.run([binary, "status", "-data", self.data, "-json"], env=env,
                                capture_output=True, text=True, timeout=60)
        info = json.loads(status.stdout)
        address = info["listen_addrs"][0]
        if "/p2p/" not in address:
            address += "/p2p/" + info["node_id"]
        self.target = address
        self.port = hs.harness.port_of(address)
        with open(os.path.join(self.data, "node.pid")) as f:
            self.pid = int(f.read().strip())

    def alive(self):
        return hs.harness.process_alive(self.pid)

    def stop(self):
        subprocess.run([self.binary, "stop", "-data", self.data, "-timeout", "10"],
                       env=hs.harness.base_env(), capture_output=True, timeout=60)


class Soak:
    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.node = None
        self.honest = None
        self.samples = []
        self.waves = []         # {"kind", "start", "end", "summary"}
        self.current_wave = ""
        self.stop_event = threading.Event()
        self.peers = []         # js processes to kill on the way out
        self.lock = threading.Lock()

    # ---- hostile waves ----

    def js(self, mode, *args, timeout=300):
        peer = hs.JsPeer(mode, self.node.target, *args)
        with self.lock:
            self.peers.append(peer)
        try:
            peer.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            peer.kill()
        peer._reader.join(timeout=10)
        return peer.lines[-1] if peer.lines else {"error": "no output"}

    def wave(self, kind):
        a = self.args
        if kind == "sybils":
            return {"ordinary": self.js("sybils", "--count", a.sybils, "--concurrency", 6),
                    "maximal": self.js("sybils", "--count", a.maximal_sybils, "--concurrency", 4,
                                       "--maximal")}
        if kind == "handshakes":
            attack = hs.StalledHandshakes(self.node.port, a.stalled, source="127.0.0.2").start()
            try:
                self.stop_event.wait(a.stall_s)
                attack.stop_sustaining()
                return {"opened": attack.opened, "closed_by_node": len(attack.lifetimes),
                        "still_open_at_release": attack.still_open(),
                        "max_lifetime_s": max(attack.lifetimes) if attack.lifetimes else None}
            finally:
                attack.stop()
        if kind == "streams":
            peer = hs.JsPeer("streams", self.node.target, "--streams", a.flood_streams,
                             "--hold", 500)
            with self.lock:
                self.peers.append(peer)
            try:
                summary = peer.next(180, lambda o: o.get("kind") == "flooded", "the flood")
                self.stop_event.wait(5)
                return summary
            finally:
                peer.finish()
        if kind == "dht":
            return self.js("dht", "--peers", 4, "--providers", a.dht_providers, "--records",
                           a.dht_records, "--queries", a.dht_queries, "--streams", 4)
        if kind == "oversized":
            return self.js("oversized", "--count", a.oversized, "--concurrency", 4)
        raise ValueError(kind)

    def hostile_loop(self):
        i = 0
        kinds = [k for k in WAVES if k not in self.args.skip_waves]
        while not self.stop_event.wait(self.args.pause) and kinds:
            kind = kinds[i % len(kinds)]
            i += 1
            started = time.time()
            self.current_wave = kind
            try:
                summary = self.wave(kind)
            except Exception as e:  # a failed wave is recorded, the soak goes on
                summary = {"error": str(e)}
            self.current_wave = ""
            self.waves.append({"kind": kind, "start": started, "end": time.time(),
                               "summary": summary})
            log("wave %s: %.0fs %s" % (kind, time.time() - started,
                                       json.dumps(summary)[:300]))

    # ---- sampling ----

    def sample(self, since, now):
        def of_kind(kind):
            return hs.HonestPeer.summary(self.honest.results(kind, since, now),
                                         key="rtt_ms" if kind == "ping" else "ms")
        pings, fresh, dht = of_kind("ping"), of_kind("fresh"), of_kind("dht")
        try:
            rss, fds = hs.rss_bytes(self.node.pid), hs.fd_count(self.node.pid)
        except (OSError, AssertionError):
            rss, fds = None, None
        row = {"t": round(now - self.t0, 1), "rss_mib": rss / MIB if rss else None, "fds": fds,
               "wave": self.current_wave,
               "pings": pings["count"], "ping_failed": pings["failed"],
               "ping_p50_ms": pings["p50_ms"], "ping_p99_ms": pings["p99_ms"],
               "ping_max_ms": pings["max_ms"],
               "fresh": fresh["count"], "fresh_failed": fresh["failed"],
               "fresh_p50_ms": fresh["p50_ms"],
               "dht": dht["count"], "dht_failed": dht["failed"], "dht_p50_ms": dht["p50_ms"]}
        self.samples.append(row)
        return row

    def run(self):
        a = self.args
        self.node = Node(a.binary, self.workdir)
        log("node %d at %s" % (self.node.pid, self.node.target))
        self.honest = hs.HonestPeer(self.node.target, interval_ms=a.ping_ms,
                                    ping_timeout_ms=5000, fresh_every_ms=a.fresh_ms,
                                    dht_every_ms=a.dht_ms, max_seconds=a.duration + 120)
        time.sleep(2)
        self.t0 = time.time()
        self.baseline_rss = hs.rss_bytes(self.node.pid)
        hostile = threading.Thread(target=self.hostile_loop, daemon=True)
        hostile.start()
        last = self.t0
        end = self.t0 + a.duration
        while time.time() < end and self.node.alive():
            time.sleep(min(a.sample_s, max(0.0, end - time.time())))
            now = time.time()
            row = self.sample(last, now)
            last = now
            if a.verbose:
                log("t=%5.0fs rss %.1f MiB fds %s pings %d (%d failed) p50 %s p99 %s %s" % (
                    row["t"], row["rss_mib"] or 0, row["fds"], row["pings"], row["ping_failed"],
                    row["ping_p50_ms"], row["ping_p99_ms"], row["wave"]))
        self.stop_event.set()
        hostile.join(timeout=240)
        self.node_survived = self.node.alive()

    def cleanup(self):
        self.stop_event.set()
        with self.lock:
            peers = list(self.peers)
        for peer in peers:
            peer.kill()
        if self.honest is not None:
            self.honest.finish(timeout=10)
        if self.node is not None:
            self.node.stop()

    # ---- results ----

    def summary(self):
        a = self.args
        pings = self.honest.results("ping")
        s = hs.HonestPeer.summary(pings)
        fresh = hs.HonestPeer.summary(self.honest.results("fresh"), key="ms")
        dht = hs.HonestPeer.summary(self.honest.results("dht"), key="ms")
        rss = [r["rss_mib"] for r in self.samples if r["rss_mib"] is not None]
        n = len(rss)
        middle = rss[max(0, n // 2 - max(1, n // 20)):n // 2 + max(1, n // 20)] if n else []
        tail = rss[n - max(1, n // 10):] if n else []
        growth = (hs.median(tail) - hs.median(middle)) if middle and tail else None
        fds = [r["fds"] for r in self.samples if r["fds"] is not None]
        return {
            "duration_s": a.duration,
            "baseline_rss_mib": self.baseline_rss / MIB,
            "max_rss_mib": max(rss) if rss else None,
            "end_rss_mib": rss[-1] if rss else None,
            "last_half_growth_mib": growth,
            "max_fds": max(fds) if fds else None,
            "pings": s, "ping_failure_rate": s["failed"] / s["count"] if s["count"] else 1.0,
            "fresh_dials": fresh, "dht_lookups": dht,
            "waves": {k: sum(1 for w in self.waves if w["kind"] == k) for k in WAVES},
            "node_survived": self.node_survived,
        }

    def write(self, out, summary):
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "soak.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.samples[0].keys()) if self.samples
                                    else ["t"])
            writer.writeheader()
            writer.writerows(self.samples)
        with open(os.path.join(out, "soak.json"), "w") as f:
            json.dump({"args": vars(self.args), "summary": summary, "samples": self.samples,
                       "waves": [dict(w, start=round(w["start"] - self.t0, 1),
                                      end=round(w["end"] - self.t0, 1)) for w in self.waves]},
                      f, indent=1, default=str)
        if not self.args.no_plot:
            self.plot(os.path.join(out, "soak.png"), summary)

    def plot(self, path, summary):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        t = [r["t"] / 60 for r in self.samples]
        fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
        ax1.plot(t, [r["rss_mib"] for r in self.samples], color="tab:blue")
        ax1.set_ylabel("RSS (MiB)")
        ax2.plot(t, [r["fds"] for r in self.samples], color="tab:green")
        ax2.set_ylabel("descriptors")
        ax3.plot(t, [r["ping_p50_ms"] for r in self.samples], label="ping p50", color="tab:gray")
        ax3.plot(t, [r["ping_p99_ms"] for r in self.samples], label="ping p99", color="tab:red")
        failed = [(r["t"] / 60, r["ping_p99_ms"] or 0) for r in self.samples if r["ping_failed"]]
        if failed:
            ax3.scatter(*zip(*failed), marker="x", color="black", label="failed pings")
        ax3.set_ylabel("honest ping (ms)")
        ax3.set_yscale("log")
        ax3.set_xlabel("minutes")
        ax3.legend(loc="upper right")
        colors = {"sybils": "tab:orange", "handshakes": "tab:purple", "streams": "tab:cyan",
                  "dht": "tab:olive", "oversized": "tab:pink"}
        for w in self.waves:
            for ax in (ax1, ax2, ax3):
                ax.axvspan((w["start"] - self.t0) / 60, (w["end"] - self.t0) / 60,
                           color=colors.get(w["kind"], "gray"), alpha=0.15, linewidth=0)
        handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.3) for c in colors.values()]
        ax1.legend(handles, list(colors), loc="upper left", ncol=5, fontsize="small")
        fig.suptitle("agentnetwork soak: %.0f min, pings %d (%d failed), RSS %.1f -> %.1f MiB"
                     % (self.args.duration / 60, summary["pings"]["count"],
                        summary["pings"]["failed"], summary["baseline_rss_mib"],
                        summary["end_rss_mib"] or 0))
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)

    def markdown(self, summary):
        s = summary
        p, f, d = s["pings"], s["fresh_dials"], s["dht_lookups"]
        fmt = lambda v: "-" if v is None else "%.1f" % v  # noqa: E731
        lines = [
            "## Soak: %.0f s of honest and hostile load" % s["duration_s"],
            "",
            "| figure | value |",
            "|---|---|",
            "| RSS baseline / max / end | %.1f / %.1f / %.1f MiB |" % (
                s["baseline_rss_mib"], s["max_rss_mib"] or 0, s["end_rss_mib"] or 0),
            "| RSS growth, middle to end | %s MiB |" % fmt(s["last_half_growth_mib"]),
            "| descriptors, max | %s |" % s["max_fds"],
            "| honest pings: count, failed | %d, %d (%.2f%%) |" % (
                p["count"], p["failed"], 100 * s["ping_failure_rate"]),
            "| honest ping p50 / p99 / max | %s / %s / %s ms |" % (
                fmt(p["p50_ms"]), fmt(p["p99_ms"]), fmt(p["max_ms"])),
            "| fresh honest connections: count, failed, p50 | %d, %d, %s ms |" % (
                f["count"], f["failed"], fmt(f["p50_ms"])),
            "| DHT lookups: count, failed, p50 | %d, %d, %s ms |" % (
                d["count"], d["failed"], fmt(d["p50_ms"])),
            "| hostile waves | %s |" % ", ".join("%s %d" % kv for kv in s["waves"].items()),
        ]
        return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=1800)
    parser.add_argument("--binary", default=os.environ.get("AGENTNETWORK_BIN") or os.path.join(
        ROOT, "build", "src", "agentnetwork"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--sample-s", type=float, default=5)
    parser.add_argument("--ping-ms", type=int, default=200)
    parser.add_argument("--fresh-ms", type=int, default=5000)
    parser.add_argument("--dht-ms", type=int, default=2000)
    parser.add_argument("--pause", type=float, default=3, help="seconds between hostile waves")
    parser.add_argument("--sybils", type=int, default=200)
    parser.add_argument("--maximal-sybils", type=int, default=30)
    parser.add_argument("--stalled", type=int, default=200)
    parser.add_argument("--stall-s", type=float, default=15)
    parser.add_argument("--flood-streams", type=int, default=3000)
    parser.add_argument("--dht-providers", type=int, default=4000)
    parser.add_argument("--dht-records", type=int, default=1000)
    parser.add_argument("--dht-queries", type=int, default=400)
    parser.add_argument("--oversized", type=int, default=10)
    parser.add_argument("--skip-waves", default="", help="comma-separated wave kinds to leave out")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 beyond the ping failure budget or the RSS growth bound")
    parser.add_argument("--ping-failure-budget", type=float, default=0.005)
    parser.add_argument("--rss-growth-bound-mib", type=float, default=16)
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    args.skip_waves = [w for w in args.skip_waves.split(",") if w]
    if not os.access(args.binary, os.X_OK):
        sys.exit("no agentnetwork binary at %s (--binary or AGENTNETWORK_BIN)" % args.binary)
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.exit("matplotlib is missing (Debian: python3-matplotlib; or --no-plot)")
    if hs.js_ready():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HOSTILE, check=True)
    out = args.out or os.path.join(os.getcwd(), time.strftime("soak-%Y%m%d-%H%M%S"))
    workdir = tempfile.mkdtemp(prefix="an-soak-")
    soak = Soak(args, workdir)
    try:
        soak.run()
    finally:
        soak.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    summary = soak.summary()
    soak.write(out, summary)
    print(soak.markdown(summary))
    print()
    print("files: %s" % out)
    print(json.dumps(summary, sort_keys=True))
    if args.check:
        problems = []
        if not summary["node_survived"]:
            problems.append("the node died")
        if summary["ping_failure_rate"] > args.ping_failure_budget:
            problems.append("honest pings failed: %d of %d (budget %.1f%%)" % (
                summary["pings"]["failed"], summary["pings"]["count"],
                100 * args.ping_failure_budget))
        growth = summary["last_half_growth_mib"]
        if growth is None or growth > args.rss_growth_bound_mib:
            problems.append("RSS grew by %s MiB in the last half (bound %.0f MiB)" % (
                growth, args.rss_growth_bound_mib))
        if problems:
            print("soak check FAILED: " + "; ".join(problems))
            sys.exit(1)
        print("soak check passed")


if __name__ == "__main__":
    main()
