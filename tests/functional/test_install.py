"""cmake --install: the binary, the systemd unit and the logrotate rules in their places, and the
logrotate rules run for real against a node (rename, then SIGHUP to reopen).

The build directory is the one holding AGENTNETWORK_BIN (BUILD/src/agentnetwork); the tests are
skipped for a binary outside a CMake build directory. The logrotate tests are skipped when
logrotate is not installed.
"""

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import unittest

import harness
from harness import BIN, base_env, process_alive, read_text, wait_until

BUILD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(BIN)))
INSTALL_TIMEOUT = 120
# What the installed files say about the node's data directory (agentnetwork.service).
SERVICE_DATA_DIR = "/var/lib/agentnetwork"


def cmake_command():
    """The cmake that configured the build directory, or None when BIN is not in one."""
    try:
        cache = read_text(os.path.join(BUILD_DIR, "CMakeCache.txt"))
    except OSError:
        return None
    match = re.search(r"^CMAKE_COMMAND:INTERNAL=(.+)$", cache, re.M)
    return match.group(1).strip() if match else shutil.which("cmake")


def directives(text):
    """The lines of a logrotate or systemd file that are not comments, stripped."""
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.strip().startswith("#")]


class InstallTest(harness.NodeTestCase):

    def setUp(self):
        super().setUp()
        self.cmake = cmake_command()
        if not self.cmake:
            self.skipTest("%s is not in a CMake build directory" % BIN)

    def install(self, prefix, destdir=None):
        env = dict(os.environ)
        env.pop("DESTDIR", None)
        if destdir:
            env["DESTDIR"] = destdir
        proc = subprocess.run([self.cmake, "--install", BUILD_DIR, "--prefix", prefix], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT)
        output = proc.stdout.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, output)
        return output

    def assert_service(self, path, binary):
        self.assertTrue(os.path.isfile(path), path)
        lines = directives(read_text(path))
        self.assertIn("ExecStart=%s run -data %s" % (binary, SERVICE_DATA_DIR), lines)
        self.assertIn("Type=notify", lines)
        self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", lines)
        self.assertNotIn("@AN_", read_text(path), "a placeholder was left unconfigured")

    def assert_logrotate_rules(self, path):
        self.assertTrue(os.path.isfile(path), path)
        text = read_text(path)
        lines = directives(text)
        self.assertIn(SERVICE_DATA_DIR + "/logs/node.log {", lines)
        self.assertNotIn("copytruncate", lines)
        self.assertIn("nocreate", lines)
        self.assertIn("su agentnetwork agentnetwork", lines)
        script = text[text.index("postrotate"):text.index("endscript")]
        self.assertIn("--signal=HUP agentnetwork.service", script)
        self.assertIn("kill -HUP", script)
        self.assertIn(SERVICE_DATA_DIR + "/node.pid", script)

    def test_install_to_prefix(self):
        prefix = os.path.join(self.tmp, "prefix")
        self.install(prefix)
        binary = os.path.join(prefix, "bin", "agentnetwork")
        self.assertTrue(os.access(binary, os.X_OK), binary)
        self.assert_service(os.path.join(prefix, "lib", "systemd", "system",
                                         "agentnetwork.service"), binary)
        self.assert_logrotate_rules(os.path.join(prefix, "etc", "logrotate.d", "agentnetwork"))

        installed = subprocess.run([binary, "version"], env=base_env(), cwd=self.tmp,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, timeout=harness.CLI_TIMEOUT)
        self.assertEqual(installed.returncode, 0, installed)
        self.assertRegex(installed.stdout.decode(), r"^agentnetwork \d+\.\d+\.\d+\S*\n$")
        self.assertEqual(installed.stdout.decode(), self.cli("version").out)

    def test_install_to_usr_under_destdir(self):
        # A package build: --prefix /usr staged under DESTDIR. Configuration goes to /etc, not
        # /usr/etc, as GNUInstallDirs says for the prefix /usr.
        stage = os.path.join(self.tmp, "stage")
        self.install("/usr", destdir=stage)
        self.assertTrue(os.access(os.path.join(stage, "usr", "bin", "agentnetwork"), os.X_OK))
        self.assert_service(os.path.join(stage, "usr", "lib", "systemd", "system",
                                         "agentnetwork.service"), "/usr/bin/agentnetwork")
        self.assert_logrotate_rules(os.path.join(stage, "etc", "logrotate.d", "agentnetwork"))
        self.assertFalse(os.path.exists(os.path.join(stage, "usr", "etc")))


@unittest.skipUnless(shutil.which("logrotate"), "logrotate is not installed")
class LogrotateTest(harness.NodeTestCase):
    """The installed rules, with the data directory and user of this test, run by logrotate."""

    def setUp(self):
        super().setUp()
        self.cmake = cmake_command()
        if not self.cmake:
            self.skipTest("%s is not in a CMake build directory" % BIN)
        prefix = os.path.join(self.tmp, "prefix")
        proc = subprocess.run([self.cmake, "--install", BUILD_DIR, "--prefix", prefix],
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.rules = read_text(os.path.join(prefix, "etc", "logrotate.d", "agentnetwork"))

    def run_logrotate(self, data):
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        rules = self.rules.replace(SERVICE_DATA_DIR, data).replace(
            "su agentnetwork agentnetwork", "su %s %s" % (user, group))
        config = os.path.join(self.tmp, "logrotate.conf")
        with open(config, "w") as f:
            f.write(rules)
        os.chmod(config, 0o644)
        # -f: rotate now, not only once a day has passed.
        proc = subprocess.run(["logrotate", "-f", "-s", os.path.join(self.tmp, "logrotate.state"),
                               config], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=60)
        output = proc.stdout.decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 0, output)
        return output

    def rotated_files(self, data):
        logs = os.path.join(data, "logs")
        return sorted(n for n in os.listdir(logs) if re.fullmatch(r"node\.log-\d{8}-\d+", n))

    def test_rotation_reopens_the_node_log(self):
        data = self.data_dir()
        _, status = self.start_node(data)
        pid = status["pid"]
        log = self.log_file(data)
        wait_until(lambda: "node ready" in read_text(log), 10, message="'node ready' in node.log")

        self.run_logrotate(data)
        rotated = self.rotated_files(data)
        self.assertEqual(len(rotated), 1, os.listdir(os.path.dirname(log)))
        moved = os.path.join(data, "logs", rotated[0])
        wait_until(lambda: os.path.exists(log) and "log file reopened" in read_text(log), 10,
                   message=lambda: "the reopen line in a new node.log (have %s)" % (
                       os.listdir(os.path.dirname(log))))
        self.assertTrue(process_alive(pid), "SIGHUP killed the node")
        self.assertIn("node ready", read_text(moved))
        self.assertNotIn("log file reopened", read_text(moved))
        # The node's own rotation files are not touched: their names differ.
        self.assertFalse(os.path.exists(log + ".1"))

        size_before = os.path.getsize(moved)
        self.stop_node(data)
        self.assertIn("shutting down", read_text(log))
        self.assertEqual(os.path.getsize(moved), size_before)

    def test_stale_pid_file_names_another_program(self):
        # A node that crashed left node.pid behind, and its PID now belongs to another program:
        # that program must not get the SIGHUP (which would end it).
        data = self.data_dir()
        os.makedirs(os.path.join(data, "logs"))
        with open(self.log_file(data), "w") as f:
            f.write("a line of a node that is gone\n")
        other = self.spawn(["sleep", "60"])
        with open(self.pid_file(data), "w") as f:
            f.write("%d\n" % other.pid)

        self.run_logrotate(data)
        self.assertEqual(len(self.rotated_files(data)), 1)
        self.assertIsNone(other.poll(), "the program named by the stale node.pid was signalled")
        other.send_signal(signal.SIGTERM)
        other.wait(timeout=10)


if __name__ == "__main__":
    unittest.main()
