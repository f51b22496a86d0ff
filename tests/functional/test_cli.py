"""Command-line parsing, help, version and config.json (SPEC section 1).

Bad input is rejected before anything starts: exit code 2, a one-line error naming the bad value,
no data directory, no key and no process created.
"""

import json
import os
import re
import unittest

import harness
from harness import LOOPBACK_ANY_PORT, node_pids

COMMANDS = ("start", "run", "stop", "restart", "status", "logs", "keygen", "config", "version",
            "help")


class CliTest(harness.NodeTestCase):

    def assert_nothing_created(self, data):
        self.assertFalse(os.path.exists(data), "%s was created" % data)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")), "./data was created")
        self.assertEqual(node_pids(data), [])

    def check_rejected_start(self, option_args, *needles):
        """start and run (and restart) reject these options the same way."""
        for command in ("start", "run", "restart"):
            data = self.data_dir("data-" + command)
            result = self.cli(command, "-data", data, *option_args, timeout=20)
            self.assert_usage_error(result, *needles)
            self.assertEqual(result.out, "", result)
            self.assert_nothing_created(data)

    # ---- rejected before anything starts ----

    def test_unknown_command(self):
        result = self.cli("frobnicate")
        self.assert_usage_error(result, "frobnicate")
        self.assertFalse(os.listdir(self.tmp))
        result = self.cli("help", "frobnicate")
        self.assert_usage_error(result, "frobnicate")

    def test_no_command(self):
        result = self.cli()
        self.assertEqual(result.rc, 2, result)
        self.assertIn("Usage: agentnetwork", result.err)

    def test_unknown_option(self):
        self.check_rejected_start(["-listen", LOOPBACK_ANY_PORT, "-frobnicate", "1"],
                                  "-frobnicate")
        data = self.data_dir()
        self.assert_usage_error(self.cli("status", "-data", data, "--frobnicate"), "--frobnicate")
        self.assert_usage_error(self.cli("stop", "-data", data, "-json"), "-json")
        self.assert_nothing_created(data)

    def test_malformed_listen_address(self):
        self.check_rejected_start(["-listen", "/ip4/1.2.3/tcp/1"], "/ip4/1.2.3/tcp/1")

    def test_quic_listen_not_supported_yet(self):
        self.check_rejected_start(["-listen", "/ip4/127.0.0.1/udp/1/quic-v1"],
                                  "/ip4/127.0.0.1/udp/1/quic-v1", "not supported yet")

    def test_unknown_role(self):
        self.check_rejected_start(["-listen", LOOPBACK_ANY_PORT, "-role", "boss"], "boss")

    def test_bootstrap_without_peer_id(self):
        line = None
        for command in ("start", "run"):
            data = self.data_dir("data-" + command)
            result = self.cli(command, "-data", data, "-listen", LOOPBACK_ANY_PORT,
                              "-bootstrap", "/ip4/127.0.0.1/tcp/1")
            line = self.assert_usage_error(result, "/ip4/127.0.0.1/tcp/1")
            self.assertIn("/p2p/", line)
            self.assert_nothing_created(data)

    def test_negative_log_size(self):
        self.check_rejected_start(["-listen", LOOPBACK_ANY_PORT, "-log-max-size-mb", "-5"],
                                  "-log-max-size-mb", "-5")

    def test_zero_log_files(self):
        self.check_rejected_start(["-listen", LOOPBACK_ANY_PORT, "-log-max-files", "0"],
                                  "-log-max-files", '"0"')

    def test_logs_bad_count(self):
        data = self.data_dir()
        self.assert_usage_error(self.cli("logs", "-data", data, "-n", "abc"), "abc")
        self.assert_usage_error(self.cli("logs", "-data", data, "-n", "-3"), "-3")
        self.assert_nothing_created(data)

    def test_stop_bad_timeout(self):
        data = self.data_dir()
        self.assert_usage_error(self.cli("stop", "-data", data, "-timeout", "-1"), "-1")
        self.assert_usage_error(self.cli("stop", "-data", data, "-timeout", "soon"), "soon")
        self.assert_nothing_created(data)

    def test_option_missing_value(self):
        data = self.data_dir()
        self.check_rejected_start(["-listen"], "-listen")
        result = self.cli("start", "-data")
        self.assert_usage_error(result, "-data")
        self.assert_usage_error(self.cli("logs", "-data", data, "-n"), "-n")
        self.assert_usage_error(self.cli("stop", "-data", data, "--timeout"), "-timeout")
        self.assert_nothing_created(data)

    # ---- spellings, help, version ----

    def test_option_spellings(self):
        data = self.data_dir()
        outputs = []
        for args in (["-data", data], ["--data", data], ["-data=" + data], ["--data=" + data]):
            result = self.cli("status", *args)
            self.assertEqual(result.rc, 3, result)
            self.assertRegex(result.out, r"(?m)^Data dir:\s+%s$" % re.escape(data))
            outputs.append(result.out)
        self.assertEqual(len(set(outputs)), 1)
        # A node started with the double-dash spellings, stopped with the single-dash ones.
        result = self.cli("start", "--data=" + data, "--listen", LOOPBACK_ANY_PORT,
                          "--role=relay")
        self.assertEqual(result.rc, 0, result)
        rc, status = self.status_json(data)
        self.assertEqual(rc, 0)
        self.assertEqual(status["role"], "relay")
        self.assertEqual(status["data_dir"], data)
        self.assertTrue(status["listen_addrs"][0].startswith("/ip4/127.0.0.1/tcp/"))
        stop = self.cli("stop", "-data", data)
        self.assertEqual(stop.rc, 0, stop)
        self.assert_node_gone(data, status["pid"])

    def test_help_on_every_command(self):
        for command in COMMANDS:
            for flag in ("-h", "--help"):
                result = self.cli(command, flag)
                self.assertEqual(result.rc, 0, result)
                self.assertIn("Usage: agentnetwork %s" % command, result.out, result)
        self.assertEqual(os.listdir(self.tmp), [], "help created files")

    def test_help_overview_and_help_command(self):
        for args in (["help"], ["-h"], ["--help"]):
            result = self.cli(*args)
            self.assertEqual(result.rc, 0, result)
            for command in COMMANDS:
                self.assertRegex(result.out, r"(?m)^  %s\s" % command)
        result = self.cli("help", "start")
        self.assertEqual(result.rc, 0, result)
        self.assertIn("Usage: agentnetwork start", result.out)
        for option in ("-data", "-key", "-listen", "-bootstrap", "-role", "-log-max-size-mb",
                       "-log-max-files"):
            self.assertIn(option, result.out)

    def test_version(self):
        result = self.cli("version")
        self.assertEqual(result.rc, 0, result)
        self.assertRegex(result.out, r"^agentnetwork \d+\.\d+\.\d+\S*\n$")
        self.assertEqual(self.cli("--version").out, result.out)
        self.assertEqual(self.cli("version", "extra").rc, 2)

    # ---- config.json ----

    def write_config(self, data, text):
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, "config.json"), "w") as f:
            f.write(text)

    def check_bad_config(self, text, *needles):
        data = self.data_dir()
        self.write_config(data, text)
        result = self.cli("start", "-data", data, "-listen", LOOPBACK_ANY_PORT)
        self.assert_usage_error(result, "config.json", *needles)
        self.assertEqual(sorted(os.listdir(data)), ["config.json"], "start created files")
        self.assertEqual(node_pids(data), [])
        validate = self.cli("config", "validate", "-data", data)
        self.assertEqual(validate.rc, 1, validate)
        self.assertIn("config.json", validate.err)
        for needle in needles:
            self.assertIn(needle, validate.err)

    def test_config_invalid_json(self):
        self.check_bad_config('{"role": "relay",', "JSON")

    def test_config_unknown_key(self):
        self.check_bad_config('{"frobnicate": 1}', "frobnicate")

    def test_config_bad_value(self):
        self.check_bad_config('{"role": "boss"}', "boss")

    def test_config_init_show_validate(self):
        data = self.data_dir()
        result = self.cli("config", "init", "-data", data)
        self.assertEqual(result.rc, 0, result)
        config_file = os.path.join(data, "config.json")
        written = harness.read_bytes(config_file)
        config = json.loads(written)
        self.assertEqual(config["listen"], ["/ip4/0.0.0.0/tcp/0"])
        self.assertEqual(config["bootstrap"], [])
        self.assertEqual(config["role"], "normal")
        self.assertEqual(config["log_max_size_mb"], 10)
        self.assertEqual(config["log_max_files"], 5)

        show = self.cli("config", "show", "-data", data)
        self.assertEqual(show.rc, 0, show)
        shown = json.loads(show.out)
        for key in ("listen", "bootstrap", "role", "log_max_size_mb", "log_max_files"):
            self.assertEqual(shown[key], config[key], key)
        self.assertEqual(shown["key"], os.path.join(data, "keys", "node.key"))

        validate = self.cli("config", "validate", "-data", data)
        self.assertEqual(validate.rc, 0, validate)
        self.assertIn("valid", validate.out)

        again = self.cli("config", "init", "-data", data)
        self.assertEqual(again.rc, 1, again)
        self.assertIn("already exists", again.err)
        self.assertEqual(harness.read_bytes(config_file), written)
        self.assertFalse(os.path.exists(os.path.join(data, "keys")), "config created a key")

    def test_config_show_reflects_file(self):
        data = self.data_dir()
        self.write_config(data, json.dumps({"role": "relay", "log_max_files": 7,
                                            "listen": ["/ip4/127.0.0.1/tcp/4001"]}))
        show = self.cli("config", "show", "-data", data)
        self.assertEqual(show.rc, 0, show)
        shown = json.loads(show.out)
        self.assertEqual(shown["role"], "relay")
        self.assertEqual(shown["log_max_files"], 7)
        self.assertEqual(shown["listen"], ["/ip4/127.0.0.1/tcp/4001"])
        self.assertEqual(shown["log_max_size_mb"], 10)

    def test_command_line_overrides_config(self):
        data = self.data_dir()
        self.write_config(data, json.dumps({"role": "relay", "listen": [LOOPBACK_ANY_PORT]}))
        _, status = self.start_node(data, listen=None)
        self.assertEqual(status["role"], "relay")
        self.assertTrue(status["listen_addrs"][0].startswith("/ip4/127.0.0.1/tcp/"),
                        status["listen_addrs"])
        self.stop_node(data)
        _, status = self.start_node(data, listen=None, extra=["-role", "bootstrap"])
        self.assertEqual(status["role"], "bootstrap")
        self.stop_node(data)


if __name__ == "__main__":
    unittest.main()
