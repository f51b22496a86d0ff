"""start / status / stop / restart / run: the node's life cycle (SPEC sections 1-3)."""

import datetime
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import harness
from harness import (LOOPBACK_ANY_PORT, PEER_ID_RE, RFC3339_RE, STATUS_KEYS, UPTIME_RE,
                     base_env, connect_and_expect_close, free_port, node_pids, port_of,
                     process_alive, read_text, wait_until)


def parse_start_output(test, result):
    """The fields `start` prints once the node is ready."""
    out = result.out
    test.assertIn("Node started", out, result)
    pid = re.search(r"^PID:\s+(\d+)$", out, re.M)
    node_id = re.search(r"^Node ID:\s+(\S+)$", out, re.M)
    log_file = re.search(r"^Log file:\s+(\S+)$", out, re.M)
    test.assertTrue(pid and node_id and log_file, result)
    test.assertRegex(out, r"(?m)^Listen addresses:$")
    addrs = re.findall(r"^\s+- (/\S+)$", out, re.M)
    test.assertTrue(addrs, result)
    return int(pid.group(1)), node_id.group(1), addrs, log_file.group(1)


class LifecycleTest(harness.NodeTestCase):

    def test_start_status_stop(self):
        data = self.data_dir()
        before = datetime.datetime.now(datetime.timezone.utc)
        result = self.cli("start", "-data", data, "-listen", LOOPBACK_ANY_PORT)
        self.assertEqual(result.rc, 0, result)
        pid, node_id, addrs, log_file = parse_start_output(self, result)
        self.assertRegex(node_id, PEER_ID_RE)
        self.assertEqual(log_file, os.path.join(data, "logs", "node.log"))
        self.assertTrue(os.path.isfile(log_file))
        self.assertEqual(len(addrs), 1, result)
        self.assertRegex(addrs[0], r"^/ip4/127\.0\.0\.1/tcp/[1-9]\d*/p2p/" + node_id + "$")
        port = port_of(addrs[0])

        # The PID is real and recorded.
        self.assertEqual(self.read_pid_file(data), pid)
        self.assertTrue(process_alive(pid))
        self.assertEqual(node_pids(data), [pid])

        # Detached: its own session without a terminal, stdin from /dev/null, output to the log.
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        self.assertEqual(int(fields[3]), pid, "the node does not lead its own session")
        self.assertEqual(int(fields[4]), 0, "the node has a controlling terminal")
        self.assertEqual(os.readlink("/proc/%d/fd/0" % pid), "/dev/null")
        for fd in (1, 2):
            self.assertEqual(os.readlink("/proc/%d/fd/%d" % (pid, fd)), log_file)

        # status -json: every key of SPEC section 3.
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0)
        for key in STATUS_KEYS:
            self.assertIn(key, status)
        self.assertIs(status["running"], True)
        self.assertEqual(status["pid"], pid)
        self.assertRegex(status["start_time"], RFC3339_RE)
        start_time = datetime.datetime.fromisoformat(status["start_time"].replace("Z", "+00:00"))
        self.assertLess(abs((start_time - before).total_seconds()), 60, status["start_time"])
        self.assertRegex(status["uptime"], UPTIME_RE)
        self.assertEqual(status["node_id"], node_id)
        self.assertRegex(status["version"], r"^\d+\.\d+\.\d+")
        version = self.cli("version")
        self.assertIn(status["version"], version.out)
        self.assertEqual(status["role"], "normal")
        self.assertEqual(status["listen_addrs"], addrs)
        for addr in status["listen_addrs"]:
            self.assertTrue(addr.endswith("/p2p/" + node_id), addr)
        self.assertEqual(status["peer_count"], 0)
        self.assertEqual(status["data_dir"], data)
        self.assertEqual(status["log_file"], log_file)
        self.assertEqual(status["pid_file"], os.path.join(data, "node.pid"))
        with open(self.status_file(data)) as f:
            recorded = json.load(f)
        for key in STATUS_KEYS:
            self.assertIn(key, recorded, "node.status lacks %s" % key)
        self.assertEqual(recorded["pid"], pid)

        # Text status: every label.
        text = self.cli("status", "-data", data)
        self.assertEqual(text.rc, 0, text)
        lines = text.out.splitlines()
        self.assertEqual(lines[0], "======== Node Status ========")
        self.assertRegex(lines[-1], r"^=+$")
        expected = [
            r"^Status:\s+running$", r"^PID:\s+%d$" % pid, r"^Node ID:\s+%s$" % node_id,
            r"^Role:\s+normal$", r"^Version:\s+%s$" % re.escape(status["version"]),
            r"^Uptime:\s+(\d+h)?(\d+m)?\d+s$", r"^Listen addresses:$",
            r"^  - %s$" % re.escape(addrs[0]), r"^Peers:\s+0$",
            r"^Data dir:\s+%s$" % re.escape(data), r"^Log file:\s+%s$" % re.escape(log_file)]
        for pattern in expected:
            self.assertTrue(any(re.match(pattern, line) for line in lines),
                            "no line matching %r in:\n%s" % (pattern, text.out))

        # A second node on the same data dir is refused, whichever way it is launched.
        for command in ("start", "run"):
            again = self.cli(command, "-data", data, "-listen", LOOPBACK_ANY_PORT)
            self.assertEqual(again.rc, 1, again)
            self.assertIn("already running (PID %d)" % pid, again.err, again)
        self.assertEqual(node_pids(data), [pid])
        self.assertEqual(self.read_pid_file(data), pid)

        # The port really accepts connections, and the node closes them.
        connect_and_expect_close(port)
        self.assertTrue(process_alive(pid), "the node died from a TCP connection")

        stop = self.cli("stop", "-data", data)
        self.assertEqual(stop.rc, 0, stop)
        self.assertIn("Node stopped", stop.out)
        self.assertLess(stop.elapsed, 10, stop)
        self.assert_node_gone(data, pid)
        after = self.cli("status", "-data", data)
        self.assertEqual(after.rc, 3, after)
        self.assertRegex(after.out, r"(?m)^Status:\s+stopped$")
        rc, status = self.status_json(data)
        self.assertEqual(rc, 3)
        self.assertIs(status["running"], False)
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

    def test_relative_data_dir(self):
        cwd1 = os.path.join(self.tmp, "cwd1")
        cwd2 = os.path.join(self.tmp, "cwd2")
        os.makedirs(cwd1)
        os.makedirs(cwd2)
        data = self.track_data_dir(os.path.join(cwd1, "node1"))
        result = self.cli("start", "-data", "./node1", "-listen", LOOPBACK_ANY_PORT, cwd=cwd1)
        self.assertEqual(result.rc, 0, result)
        pid, _, _, log_file = parse_start_output(self, result)
        self.assertEqual(log_file, os.path.join(data, "logs", "node.log"))
        self.assertTrue(os.path.isfile(os.path.join(data, "node.pid")))
        self.assertFalse(os.path.exists(os.path.join(cwd2, "node1")))

        status = self.cli("status", "-data", data, "-json", cwd=cwd2)
        self.assertEqual(status.rc, 0, status)
        self.assertEqual(json.loads(status.out)["pid"], pid)
        with open(self.status_file(data)) as f:
            recorded = json.load(f)
        self.assertTrue(os.path.isabs(recorded["data_dir"]), recorded["data_dir"])
        self.assertEqual(os.path.realpath(recorded["data_dir"]), os.path.realpath(data))
        self.assertTrue(os.path.isabs(recorded["log_file"]), recorded["log_file"])

        # The relative spelling from the original directory names the same node.
        again = self.cli("status", "-data", "node1", cwd=cwd1)
        self.assertEqual(again.rc, 0, again)
        stop = self.cli("stop", "-data", data, cwd=cwd2)
        self.assertEqual(stop.rc, 0, stop)
        self.assert_node_gone(data, pid)

    def test_unspecified_listen_address_expanded_per_interface(self):
        data = self.data_dir()
        result, status = self.start_node(data, listen="/ip4/0.0.0.0/tcp/0")
        addrs = status["listen_addrs"]
        node_id = status["node_id"]
        self.assertTrue(addrs, status)
        ports = {port_of(a) for a in addrs}
        self.assertEqual(len(ports), 1, addrs)
        port = ports.pop()
        self.assertNotEqual(port, 0)
        self.assertFalse(any("0.0.0.0" in a for a in addrs), addrs)
        self.assertIn("/ip4/127.0.0.1/tcp/%d/p2p/%s" % (port, node_id), addrs)
        for addr in addrs:
            self.assertRegex(addr, r"^/ip4/\d+\.\d+\.\d+\.\d+/tcp/%d/p2p/%s$" % (port, node_id))
        self.assertEqual(parse_start_output(self, result)[2], addrs)
        connect_and_expect_close(port)

    def test_port_in_use_fails_fast(self):
        data = self.data_dir()
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        addr = "/ip4/127.0.0.1/tcp/%d" % port
        result = self.cli("start", "-data", data, "-listen", addr, timeout=60)
        self.assertEqual(result.rc, 1, result)
        self.assertLess(result.elapsed, 15, result)
        self.assertIn(addr, result.err, result)
        self.assertRegex(result.err.lower(), r"in use|cannot listen", result)
        self.assertIn("Last log lines", result.err, result)
        self.assertFalse(os.path.exists(self.pid_file(data)), "node.pid left behind")
        self.assertFalse(os.path.exists(self.status_file(data)), "node.status left behind")
        wait_until(lambda: not node_pids(data), 5, message="failed node to exit")
        self.assertEqual(harness.pgrep_full(data), [])
        status = self.cli("status", "-data", data)
        self.assertEqual(status.rc, 3, status)

    def test_twenty_restarts_keep_identity_and_port(self):
        data = self.data_dir()
        port = free_port()
        listen = "/ip4/127.0.0.1/tcp/%d" % port
        result, status = self.start_node(data, listen=listen)
        node_id = status["node_id"]
        pid = status["pid"]
        seen_pids = {pid}
        for i in range(20):
            # The node closes this connection first, so its side sits in TIME_WAIT.
            connect_and_expect_close(port)
            restart = self.cli("restart", "-data", data)
            self.assertEqual(restart.rc, 0, "restart %d: %r" % (i + 1, restart))
            self.assertNotIn("in use", restart.text.lower(), restart)
            new_pid, new_id, addrs, _ = parse_start_output(self, restart)
            self.assertEqual(new_id, node_id, "restart %d changed the node ID" % (i + 1))
            self.assertEqual(addrs, ["%s/p2p/%s" % (listen, node_id)],
                             "restart %d did not reuse the launch options" % (i + 1))
            self.assertNotIn(new_pid, seen_pids)
            self.assertFalse(process_alive(pid), "the old node survived restart %d" % (i + 1))
            seen_pids.add(new_pid)
            pid = new_pid
            self.assertEqual(node_pids(data), [pid])
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0)
        self.assertEqual(status["pid"], pid)
        self.assertEqual([port_of(a) for a in status["listen_addrs"]], [port])
        connect_and_expect_close(port)

    def test_concurrent_starts(self):
        data = self.data_dir()
        procs = [self.spawn_binary(["start", "-data", data, "-listen", LOOPBACK_ANY_PORT],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(5)]
        outcomes = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                self.fail("a concurrent start hung")
            outcomes.append((proc.returncode, out.decode(), err.decode()))
        winners = [o for o in outcomes if o[0] == 0]
        losers = [o for o in outcomes if o[0] != 0]
        self.assertEqual(len(winners), 1, outcomes)
        winner_pid = int(re.search(r"(?m)^PID:\s+(\d+)$", winners[0][1]).group(1))
        self.assertEqual(len(losers), 4, outcomes)
        for rc, out, err in losers:
            self.assertEqual(rc, 1, (rc, out, err))
            self.assertIn("already running (PID %d)" % winner_pid, err, (rc, out, err))
        self.assertEqual(node_pids(data), [winner_pid])
        self.assertEqual(self.read_pid_file(data), winner_pid)
        rc, status = self.status_json(data)
        self.assertEqual((rc, status["pid"]), (0, winner_pid))

    def test_stale_pid_file_naming_a_live_process(self):
        data = self.data_dir()
        sleeper = self.spawn(["sleep", "60"])
        os.makedirs(data)
        with open(self.pid_file(data), "w") as f:
            f.write("%d\n" % sleeper.pid)
        result, status = self.start_node(data)
        self.assertNotEqual(status["pid"], sleeper.pid)
        self.assertTrue(process_alive(sleeper.pid), "start harmed an unrelated process")
        self.assertEqual(self.read_pid_file(data), status["pid"])
        stop = self.stop_node(data)
        self.assertIn("Node stopped", stop.out)
        self.assert_node_gone(data, status["pid"])
        self.assertTrue(process_alive(sleeper.pid), "stop harmed an unrelated process")

        # Not running, with a stale PID file naming the sleeper: nothing to stop.
        with open(self.pid_file(data), "w") as f:
            f.write("%d\n" % sleeper.pid)
        stop = self.cli("stop", "-data", data, "-timeout", "2")
        self.assertEqual(stop.rc, 0, stop)
        self.assertIn("node is not running", stop.out)
        time.sleep(0.2)
        self.assertTrue(process_alive(sleeper.pid), "stop killed the process of a stale PID file")
        self.assertIsNone(sleeper.poll())
        status = self.cli("status", "-data", data)
        self.assertEqual(status.rc, 3, status)

    def test_kill9_then_status_and_start(self):
        data = self.data_dir()
        _, status = self.start_node(data)
        pid, node_id = status["pid"], status["node_id"]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not process_alive(pid), 5, message="killed node to exit")
        result = self.cli("status", "-data", data)
        self.assertEqual(result.rc, 3, result)
        self.assertRegex(result.out, r"(?m)^Status:\s+stopped$")
        result, status = self.start_node(data)
        self.assertNotEqual(status["pid"], pid)
        self.assertEqual(status["node_id"], node_id)
        self.assertEqual(self.read_pid_file(data), status["pid"])

    def test_kill9_during_start_fifty_times_loses_nothing(self):
        """Issue 16's attack list: `kill -9` of the starting node (and of `start` itself) at 50
        moments from the first instant to after it is ready. The key is never lost or rewritten
        and the next `start` always succeeds with the same identity."""
        data = self.data_dir()
        _, status = self.start_node(data)
        node_id = status["node_id"]
        key_file = os.path.join(data, "keys", "node.key")
        with open(key_file, "rb") as f:
            key = f.read()
        self.stop_node(data)
        killed_while_starting = 0
        for i in range(50):
            starter = self.spawn_binary(["start", "-data", data, "-listen", LOOPBACK_ANY_PORT],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep((i % 10) * 0.03)  # 0 to 270 ms: before, during and after the start
            if starter.poll() is None:
                killed_while_starting += 1
            starter.kill()
            starter.wait(timeout=10)
            # The starter may have forked the node just before it died: kill until none is left.
            deadline = time.monotonic() + 10
            while node_pids(data):
                self.assertLess(time.monotonic(), deadline, "killed node %d did not exit" % i)
                for pid in node_pids(data):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.02)
            with open(key_file, "rb") as f:
                self.assertEqual(f.read(), key, "kill %d changed the key file" % (i + 1))
        self.assertGreater(killed_while_starting, 0, "no kill landed during a start")
        result, status = self.start_node(data)
        self.assertEqual(status["node_id"], node_id)
        self.assertEqual(self.read_pid_file(data), status["pid"])

    def test_stop_escalates_to_kill(self):
        data = self.data_dir()
        _, status = self.start_node(data)
        pid = status["pid"]
        os.kill(pid, signal.SIGSTOP)
        wait_until(lambda: harness.process_state(pid) == "T", 5, message="node to be stopped")
        stop = self.cli("stop", "-data", data, "-timeout", "2", timeout=30)
        self.assertEqual(stop.rc, 0, stop)
        self.assertIn("kill", stop.out.lower(), stop)
        self.assertNotIn("Node stopped\n", stop.out)
        self.assertGreaterEqual(stop.elapsed, 1.5, stop)
        self.assertLess(stop.elapsed, 15, stop)
        self.assertFalse(process_alive(pid), "the node survived stop")
        self.assert_node_gone(data, pid)

    def test_stop_when_not_running(self):
        data = self.data_dir()
        result = self.cli("stop", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertIn("node is not running", result.out)
        os.makedirs(data)
        result = self.cli("stop", "-data", data)
        self.assertEqual(result.rc, 0, result)
        self.assertIn("node is not running", result.out)

    def test_unknown_log_level_is_reported_not_fatal(self):
        data = self.data_dir()
        _, status = self.start_node(data, env=base_env({"AGENTNETWORK_LOG_LEVEL": "loud"}))
        self.assertTrue(process_alive(status["pid"]))
        logs = self.cli("logs", "-data", data)
        self.assertIn("ignoring AGENTNETWORK_LOG_LEVEL=loud", logs.out)
        self.assertIn("node ready", logs.out)

    def test_crash_message_in_log(self):
        data = self.data_dir()
        _, status = self.start_node(data)
        pid = status["pid"]
        os.kill(pid, signal.SIGSEGV)
        wait_until(lambda: not process_alive(pid), 10, message="crashed node to exit")
        logs = self.cli("logs", "-data", data)
        self.assertEqual(logs.rc, 0, logs)
        self.assertIn("fatal signal SIGSEGV", logs.out, logs)
        result = self.cli("status", "-data", data)
        self.assertEqual(result.rc, 3, result)
        self.assertRegex(result.out, r"(?m)^Status:\s+stopped$")
        # The crash does not block the next start.
        self.start_node(data)

    def test_sighup_reopens_log(self):
        data = self.data_dir()
        _, status = self.start_node(data)
        pid = status["pid"]
        log = self.log_file(data)
        moved = log + ".moved"
        os.rename(log, moved)
        os.kill(pid, signal.SIGHUP)
        wait_until(lambda: os.path.exists(log), 5, message="a new node.log after SIGHUP")
        wait_until(lambda: "reopen" in read_text(log).lower(), 5,
                   message=lambda: "a 'reopening' line in the new node.log (it has %r)" % (
                       read_text(log) if os.path.exists(log) else None))
        self.assertTrue(process_alive(pid), "SIGHUP killed the node")
        self.assertIn("node ready", read_text(moved))
        rc, _ = self.status_json(data)
        self.assertEqual(rc, 0)
        # Later lines go to the new file, not the moved one.
        size_before = os.path.getsize(moved)
        self.stop_node(data)
        self.assertIn("shutting down", read_text(log))
        self.assertEqual(os.path.getsize(moved), size_before)

    def test_run_foreground_with_systemd_notify(self):
        data = self.data_dir()
        sock_path = os.path.join(self.tmp, "notify.sock")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(sock_path)
        notify.settimeout(0.5)
        env = base_env({"NOTIFY_SOCKET": sock_path})
        proc = self.spawn_binary(["run", "-data", data, "-listen", LOOPBACK_ANY_PORT], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stderr_chunks = []
        reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()),
                                  daemon=True)
        reader.start()
        stdout_chunks = []
        out_reader = threading.Thread(target=lambda: stdout_chunks.append(proc.stdout.read()),
                                      daemon=True)
        out_reader.start()

        messages = []

        def receive_until(wanted, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    message = notify.recv(4096).decode()
                except socket.timeout:
                    if proc.poll() is not None:
                        break
                    continue
                messages.append(message)
                if wanted in message.split("\n"):
                    return message
            self.fail("no %s from the node within %ss (got %r, exit code %r)" % (
                wanted, timeout, messages, proc.poll()))

        receive_until("READY=1", 20)
        # READY=1 means the port already accepts connections.
        with open(self.status_file(data)) as f:
            status = json.load(f)
        port = port_of(status["listen_addrs"][0])
        connect_and_expect_close(port)
        self.assertEqual(status["pid"], proc.pid)
        self.assertIn("MAINPID=%d" % proc.pid, "\n".join(messages))

        proc.send_signal(signal.SIGTERM)
        receive_until("STOPPING=1", 10)
        try:
            rc = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("run did not exit after SIGTERM")
        self.assertEqual(rc, 0)
        reader.join(5)
        out_reader.join(5)
        terminal = b"".join(stderr_chunks).decode("utf-8", "replace")
        self.assertIn("node ready", terminal)
        self.assertIn("shutting down", terminal)
        log = read_text(self.log_file(data))
        self.assertIn("node ready", log)
        self.assertIn("shutting down", log)
        self.assertFalse(os.path.exists(self.pid_file(data)))
        self.assertFalse(os.path.exists(self.status_file(data)))

    def test_chinese_status_labels(self):
        data = self.data_dir()
        _, status = self.start_node(data)
        zh = base_env({"LANG": "zh_CN.UTF-8", "LC_ALL": None, "LC_MESSAGES": None})
        result = self.cli("status", "-data", data, env=zh)
        self.assertEqual(result.rc, 0, result)
        out = result.out
        for label in ("======== 节点状态 ========", "状态:", "运行中", "节点ID:", "版本:",
                      "运行时间:", "监听地址:", "连接节点:", "数据目录:", "日志文件:"):
            self.assertIn(label, out, result)
        self.assertIn(status["node_id"], out)
        self.assertNotIn("Node Status", out)
        self.stop_node(data)
        result = self.cli("status", "-data", data, env=zh)
        self.assertEqual(result.rc, 3, result)
        self.assertIn("已停止", result.out)
        self.assertIn("======== 节点状态 ========", result.out)


if __name__ == "__main__":
    unittest.main()
