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


def start(command, cwd=None):
    """Starts a command (see `tool_command`) without waiting for it; `finish` collects it."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=tool_env(),
                            cwd=cwd)


def finish(process, timeout=300):
    """The CompletedProcess (exit code, stdout, stderr) of a started command."""
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def run_tool(tool, *args, timeout=300, cwd=None):
    return finish(start(tool_command(tool, *args), cwd), timeout)


def outcome(result):
    """(exit code, stdout, stderr) of a CompletedProcess, for `code, stdout, stderr = outcome(run_tool(...))`."""
    return result.returncode, result.stdout, result.stderr


def run_all(commands, timeout=300):
    """Runs the commands side by side (each imports TensorFlow: faster together); their CompletedProcesses."""
    processes = [start(command) for command in commands]
    return [finish(process, timeout) for process in processes]


def assert_clean_error(result, *fragments):
    """Exit code 2, one `error:` line on stderr naming each fragment, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
