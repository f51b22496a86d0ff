"""logs -n / logs -f and the node's own log rotation (SPEC section 3)."""

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import unittest

import harness
from harness import (BIN, base_env, connect_and_expect_close, port_of, read_text, wait_until)


def write_lines(path, lines, mode="a"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        for line in lines:
            f.write(line + "\n")


class LogsTest(harness.NodeTestCase):

    def logs_dir(self, data):
        return os.path.join(data, "logs")

    # ---- logs -n ----

    def test_no_log_file(self):
        data = self.data_dir()
        for prepare in (lambda: None, lambda: os.makedirs(self.logs_dir(data))):
            prepare()
            result = self.cli("logs", "-data", data)
            self.assertEqual(result.rc, 1, result)
            self.assertEqual(result.out, "")
            self.assertIn("no log file", result.err.lower(), result)
            self.assertIn(os.path.join(data, "logs"), result.err)
            follow = self.cli("logs", "-f", "-data", data, timeout=10)
            self.assertEqual(follow.rc, 1, follow)
            self.assertIn("no log file", follow.err.lower(), follow)

    def test_last_n_lines(self):
        data = self.data_dir()
        lines = ["line %02d" % i for i in range(1, 21)]
        write_lines(self.log_file(data), lines)
        result = self.cli("logs", "-n", "5", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertEqual(result.out, "\n".join(lines[-5:]) + "\n")
        result = self.cli("logs", "-data", data)  # default 50: all 20
        self.assertEqual(result.out, "\n".join(lines) + "\n")
        result = self.cli("logs", "-n", "0", "-data", data)
        self.assertEqual((result.rc, result.out), (0, ""))

    def test_continues_into_rotated_file(self):
        data = self.data_dir()
        logs = self.logs_dir(data)
        older = ["a %d" % i for i in range(1, 4)]
        old = ["b %02d" % i for i in range(1, 11)]
        current = ["c %d" % i for i in range(1, 4)]
        write_lines(os.path.join(logs, "node.log.2"), older)
        write_lines(os.path.join(logs, "node.log.1"), old)
        write_lines(os.path.join(logs, "node.log"), current)
        result = self.cli("logs", "-n", "5", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertEqual(result.out.splitlines(), old[-2:] + current)
        result = self.cli("logs", "-n", "13", "-data", data)
        self.assertEqual(result.out.splitlines(), old + current)
        result = self.cli("logs", "-n", "100", "-data", data)
        self.assertEqual(result.out.splitlines()[-13:], old + current)
        self.assertEqual(result.out.splitlines(), older + old + current)

        # An empty current file (just rotated): the lines come from node.log.1.
        with open(os.path.join(logs, "node.log"), "w"):
            pass
        result = self.cli("logs", "-n", "3", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertEqual(result.out.splitlines(), old[-3:])

    def peak_rss_kb(self, data):
        """Runs `logs -n 50` on `data`; returns (stdout lines, peak RSS of that process in KiB)."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen([BIN, "logs", "-n", "50", "-data", data], cwd=self.tmp,
                                    env=base_env(), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err)
            # wait4 reports this one child's peak memory (RUSAGE_CHILDREN would be the largest
            # of every child so far).
            deadline = time.monotonic() + 120
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid == proc.pid:
                    break
                if time.monotonic() > deadline:
                    proc.kill()
                    self.fail("logs -n 50 did not finish")
                time.sleep(0.01)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            self.assertEqual(proc.returncode, 0, err.read())
            return out.read().decode().splitlines(), usage.ru_maxrss

    def test_tail_of_huge_log_uses_little_memory(self):
        lines = ["numbered line %03d" % i for i in range(1, 101)]
        small = self.data_dir("small")
        small_log = self.log_file(small)
        os.makedirs(os.path.dirname(small_log))
        write_lines(small_log, lines)
        data = self.data_dir()
        log = self.log_file(data)
        os.makedirs(os.path.dirname(log))
        with open(log, "wb") as f:
            f.truncate(1 << 30)  # sparse: 1 GiB of NUL bytes without a newline
        write_lines(log, lines)
        self.assertGreater(os.path.getsize(log), 1 << 30)
        # The same command on a tiny log is the baseline (a sanitizer build has a large one).
        baseline_lines, baseline_kb = self.peak_rss_kb(small)
        self.assertEqual(baseline_lines, lines[-50:])
        huge_lines, peak_kb = self.peak_rss_kb(data)
        self.assertEqual(huge_lines, lines[-50:])
        self.assertGreater(peak_kb, 0)
        self.assertLess(peak_kb - baseline_kb, 32 * 1024,
                        "logs -n 50 peaked at %d KiB on a 1 GiB log, %d KiB on a tiny one"
                        % (peak_kb, baseline_kb))

    # ---- rotation by the node ----

    def test_node_rotates_its_log(self):
        data = self.data_dir()
        env = base_env({"AGENTNETWORK_LOG_LEVEL": "debug"})
        _, status = self.start_node(data, extra=["-log-max-size-mb", "0.001",
                                                 "-log-max-files", "3"], env=env)
        port = port_of(status["listen_addrs"][0])
        client_ports = []
        for _ in range(300):
            local_port, _ = connect_and_expect_close(port)
            client_ports.append(local_port)
        self.assertTrue(harness.process_alive(status["pid"]))
        logs = self.logs_dir(data)
        # The node logs a refused connection just after closing it: wait for the last one.
        wait_until(lambda: ":%d:" % client_ports[-1] in read_text(os.path.join(logs, "node.log")),
                   10, message=lambda: "the last connection's line in node.log")
        names = ["node.log.3", "node.log.2", "node.log.1", "node.log"]
        wait_until(lambda: all(os.path.exists(os.path.join(logs, n)) for n in names), 10,
                   message=lambda: "node.log.1..3 (have %s)" % sorted(os.listdir(logs)))
        limit = round(0.001 * 1024 * 1024)
        pattern = re.compile(r"closing inbound connection from 127\.0\.0\.1:(\d+)")
        kept = []
        all_lines = []
        for name in names:
            content = read_text(os.path.join(logs, name))
            file_lines = content.splitlines()
            size = os.path.getsize(os.path.join(logs, name))
            self.assertTrue(size <= limit or len(file_lines) == 1,
                            "%s is %d bytes (limit %d)" % (name, size, limit))
            self.assertTrue(content == "" or content.endswith("\n"), "%s: a split line" % name)
            all_lines += file_lines
            kept += [int(m.group(1)) for m in map(pattern.search, file_lines) if m]
        self.assertFalse(os.path.exists(os.path.join(logs, "node.log.4")))
        self.assertEqual(sorted(n for n in os.listdir(logs) if n.startswith("node.log")),
                         sorted(names))
        # Nothing lost or duplicated in the files kept: their connection lines are exactly the
        # last connections made, in order.
        self.assertGreater(len(kept), 10, all_lines)
        self.assertEqual(kept, client_ports[-len(kept):])
        self.assertEqual(len(all_lines), len(set(all_lines)), "duplicated lines")
        stamps = [line[:24] for line in all_lines]
        self.assertEqual(stamps, sorted(stamps), "lines out of order across the files")
        # logs reads across the rotated files.
        result = self.cli("logs", "-n", str(len(all_lines)), "-data", data)
        self.assertEqual(result.out.splitlines(), all_lines)

    def test_crash_message_after_rotation_lands_in_current_log(self):
        # stdout/stderr follow the rotation: a crash after several rotations is in node.log.
        data = self.data_dir()
        env = base_env({"AGENTNETWORK_LOG_LEVEL": "debug"})
        _, status = self.start_node(data, extra=["-log-max-size-mb", "0.001",
                                                 "-log-max-files", "2"], env=env)
        port = port_of(status["listen_addrs"][0])
        for _ in range(60):
            connect_and_expect_close(port)
        logs = self.logs_dir(data)
        self.assertTrue(os.path.exists(os.path.join(logs, "node.log.2")), os.listdir(logs))
        os.kill(status["pid"], signal.SIGSEGV)
        wait_until(lambda: not harness.process_alive(status["pid"]), 10,
                   message="the crashed node to exit")
        self.assertIn("fatal signal SIGSEGV", read_text(self.log_file(data)))
        result = self.cli("logs", "-n", "1", "-data", data)
        self.assertIn("fatal signal SIGSEGV", result.out, result)
        self.assertFalse(os.path.exists(os.path.join(logs, "node.log.3")))

    # ---- logs -f ----

    def test_follow_across_rotations(self):
        data = self.data_dir()
        logs = self.logs_dir(data)
        current = os.path.join(logs, "node.log")
        write_lines(current, ["old line %d" % i for i in range(5)])
        proc = self.spawn_binary(["logs", "-f", "-n", "0", "-data", data],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        printed = []

        def read_output():
            for raw in proc.stdout:
                printed.append(raw.decode("utf-8", "replace").rstrip("\n"))

        reader = threading.Thread(target=read_output, daemon=True)
        reader.start()

        # The follower has opened the file once one of these lines comes through.
        sync = 0
        deadline = time.monotonic() + 10
        while not any(line.startswith("sync ") for line in printed):
            self.assertLess(time.monotonic(), deadline, "logs -f printed nothing")
            self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
            write_lines(current, ["sync %d" % sync])
            sync += 1
            time.sleep(0.2)

        counter = [0]
        expected = []

        def numbered(count):
            result = []
            for _ in range(count):
                counter[0] += 1
                result.append("numbered %04d" % counter[0])
            expected.extend(result)
            return result

        max_files = 3
        for _ in range(6):
            write_lines(current, numbered(3))
            time.sleep(0.3)
            # Rotate exactly like the node: shift the old files (oldest first), open a fresh
            # file under a temporary name and write to it, then the two renames.
            existing = sorted((int(n.rsplit(".", 1)[1]) for n in os.listdir(logs)
                               if re.fullmatch(r"node\.log\.\d+", n)), reverse=True)
            for index in existing:
                path = os.path.join(logs, "node.log.%d" % index)
                if index >= max_files:
                    os.remove(path)
                else:
                    os.rename(path, os.path.join(logs, "node.log.%d" % (index + 1)))
            new = os.path.join(logs, "node.log.new")
            write_lines(new, numbered(2), mode="w")
            os.rename(current, os.path.join(logs, "node.log.1"))
            os.rename(new, current)
            write_lines(current, numbered(1))
            time.sleep(0.3)
        write_lines(current, numbered(3))

        last = expected[-1]
        wait_until(lambda: last in printed, 10,
                   message=lambda: "%r from logs -f (got %r)" % (last, printed[-10:]))
        time.sleep(0.3)  # anything printed twice would show up now
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("logs -f ignored SIGINT")
        reader.join(5)
        self.assertEqual(rc, 0, proc.stderr.read())
        self.assertFalse(any(line.startswith("old line") for line in printed), printed)
        got = [line for line in printed if line.startswith("numbered ")]
        self.assertEqual(got, expected)
        syncs = [line for line in printed if line.startswith("sync ")]
        self.assertEqual(len(syncs), len(set(syncs)), "sync lines printed twice")
        self.assertTrue(set(printed) <= set(expected) | set(syncs), printed)

    def test_follow_node_log(self):
        data = self.data_dir()
        _, status = self.start_node(data)
        proc = self.spawn_binary(["logs", "-f", "-n", "2", "-data", data],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        printed = []
        reader = threading.Thread(
            target=lambda: [printed.append(l.decode().rstrip("\n")) for l in proc.stdout],
            daemon=True)
        reader.start()
        wait_until(lambda: any("node ready" in line for line in printed), 10,
                   message=lambda: "the last lines from logs -f (got %r)" % printed)
        self.stop_node(data)
        wait_until(lambda: any("node stopped" in line for line in printed), 10,
                   message=lambda: "the shutdown lines from logs -f (got %r)" % printed)
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(timeout=10), 0)
        reader.join(5)
        self.assertEqual(len(printed), len(set(printed)), printed)


if __name__ == "__main__":
    unittest.main()
