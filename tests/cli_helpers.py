"""Runs the bin/ tools in subprocesses, the way a user does."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

OFFLINE_PROBE = "https://cifar.invalid/"  # an address that never answers: the data sets count as not downloadable


def tool_command(tool, *args):
    return [sys.executable, str(REPO_ROOT / "bin" / tool), *map(str, args)]


def tool_env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MOCSE_TF_PROBE_URL=OFFLINE_PROBE)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join(filter(None, [os.path.dirname(sys.executable), env.get("PATH")]))
    return env


def run_tool(tool, *args, timeout=300, cwd=None):
    return subprocess.run(tool_command(tool, *args), capture_output=True, text=True, timeout=timeout,
                          env=tool_env(), cwd=cwd)


def start_tool(tool, *args, cwd=REPO_ROOT):
    """Starts a tool without waiting for it (several started together finish sooner); see `finish`."""
    return subprocess.Popen(tool_command(tool, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=tool_env(), cwd=cwd)


def finish(process, timeout=300):
    """(exit code, stdout, stderr) of a tool started with `start_tool`."""
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def assert_clean_error(result, *fragments):
    """Exit code 2, one `error:` line on stderr naming each fragment, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
