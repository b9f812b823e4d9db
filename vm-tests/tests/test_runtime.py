"""The runtime library (ngslib.sh) and the socket helper, run on this host
with a stand-in for ngctl (tests/runtime/fakengctl): one-shot commands,
a session on a pty under script(1) with its markers, expectations, exit
statuses, UDP sockets, and the FAIL report of an unmet expectation. This
checks the plumbing the FreeBSD runs rely on, not FreeBSD's ngctl itself.

Run: python3 -m unittest discover -s vm-tests/tests
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
VMT = os.path.dirname(HERE)
RT = os.path.join(HERE, "runtime")
sys.path.insert(0, VMT)

import translate  # noqa: E402

# The UDP port runtime/plumbing.ngs is written with.
FIXED_PORT = 17999


def free_udp_port():
    """A UDP port on 127.0.0.1 that no socket is bound to at this moment."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipUnless(sys.platform.startswith("linux"), "uses util-linux script(1)")
class RuntimeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        for tool in ("script", "timeout", "mkfifo", "cc"):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("%s is not installed" % tool)
        cls.tmp = tempfile.mkdtemp()
        cls.helper = os.path.join(cls.tmp, "sockhelper")
        subprocess.run(["cc", "-std=c99", "-D_DEFAULT_SOURCE", "-O2", "-o", cls.helper,
                        os.path.join(VMT, "sockhelper.c")], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def run_scenario(self, name, **extra):
        script = os.path.join(self.tmp, name + ".sh")
        path = os.path.join(RT, name + ".ngs")
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        # The scenario's fixed UDP port becomes one that is free now, so
        # that runs in parallel (other checkouts, CI jobs) do not collide.
        text = text.replace(":%d" % FIXED_PORT, ":%d" % free_udp_port())
        dp = translate.display_path(path)
        with open(script, "w") as f:
            f.write(translate.render(translate.parse(dp, text), dp))
        env = dict(os.environ, NGS_NGCTL=os.path.join(RT, "fakengctl"), NGS_HELPER=self.helper,
                   NGS_LIB=os.path.join(VMT, "ngslib.sh"), NGS_SESSION_TIMEOUT="5",
                   NGS_SCENARIO_DIR=RT, **extra)
        return subprocess.run(["timeout", "60", "sh", script], env=env, capture_output=True,
                              text=True)

    def test_plumbing_passes(self):
        r = self.run_scenario("plumbing")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("PASS vm-tests/tests/runtime/plumbing.ngs", r.stdout)
        self.assertIn("matched line", r.stdout)

    def test_session_lines_wait_for_the_prompt_and_quiet(self):
        # A line typed while ngctl's monitor prints a packet is lost (FreeBSD's
        # ngctl hangs): the next line is typed only once ngctl is back at its
        # prompt and quiet.
        r = self.run_scenario("plumbing", FAKENGCTL_MONITOR="1")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("PASS vm-tests/tests/runtime/plumbing.ngs", r.stdout)

    def test_unmet_expectation_names_file_and_line(self):
        r = self.run_scenario("failing")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("FAIL vm-tests/tests/runtime/failing.ngs:4: session s printed no line "
                      "matching '0000:  42*' within 2000 ms", r.stdout)
        self.assertIn("0000:  41", r.stdout)


if __name__ == "__main__":
    unittest.main()
