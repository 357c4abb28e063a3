"""The tools' shared exit convention and clean stderr (mocse_tf/cli.py), checked on real processes."""

import signal
import subprocess
import sys

from mocse_tf import cli
from tests.cli_helpers import assert_clean_error, run_all, tool_command, tool_env
from tests.conftest import REPO_ROOT

TOOLS = sorted(path.name for path in (REPO_ROOT / "bin").iterdir() if path.is_file())  # every tool, new ones too


def _run_all(calls):
    """Runs every (tool, *args) side by side; their CompletedProcesses."""
    return run_all([tool_command(*call) for call in calls], timeout=180)


def test_bad_unknown_and_non_finite_flags_give_one_error_line_and_exit_2():
    cases = [(tool, "--epochz=3", ["Unknown command line flag 'epochz'"]) for tool in TOOLS]
    cases += [("train", "--epochs=abc", ["--epochs=abc", "invalid literal"]),
              ("eval_c", "--batch_size=1.5", ["--batch_size=1.5"]),
              ("train", "--learning_rate=nan", ["--learning_rate=nan", "finite"]),
              ("eval_adv", "--eps=inf", ["--eps=inf", "finite"]),
              ("train", "--flagfile=/nonexistent/x.flags", ["/nonexistent/x.flags"])]
    calls = [(tool, arg) for tool, arg, _ in cases]
    # A flag that does nothing is named in a warning before the tool goes on (here to a bad corruption name).
    calls.append(("make_c", "--dataset=synthetic", "--data_dir=/x", "--output_dir=/tmp/unused",
                  "--corruptions=blizzard"))
    results = _run_all(calls)
    for (tool, arg, fragments), result in zip(cases, results):
        assert result.stdout == "", (tool, arg, result.stdout)
        assert_clean_error(result, *fragments)
        assert "FATAL" not in result.stderr and "absl::InitializeLog" not in result.stderr, result.stderr
    assert_clean_error(results[-1], "blizzard")
    assert results[-1].stderr.startswith("warning: --data_dir=/x has no effect with --dataset=synthetic\n")


def test_help_exits_0_for_every_tool():
    calls = [(tool, "--help") for tool in TOOLS] + [("eval_c", "--helpfull"), ("train", "--epochz", "--help")]
    for command, result in zip(calls, _run_all(calls)):
        assert result.returncode == 0, (command, result.stderr[-2000:])
        assert "--" in result.stdout and result.stderr == "", (command, result.stderr[-2000:])


def test_noise_patterns_match_only_tensorflow_start_up_lines():
    noise = [
        b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        b"I0000 00:00:1795984766.782394    5530 port.cc:153] oneDNN custom operations are on. You may see "
        b"slightly different numerical results due to floating-point round-off errors.\n",
        b"E0000 00:00:1795987860.054150   11646 util.cc:131] oneDNN supports DT_UINT8 only on platforms with "
        b"AVX-512. Falling back to the default Eigen-based implementation if present.\n",  # seen in an eval_c run
        b"E0000 00:00:1795984801.000001   10021 tensor.cc:1082] Tensor RefCount not reliable if buf_ points to a "
        b"SubBuffer.\n",
    ]
    kept = [
        b"error: --model x.keras is not a .keras archive\n",
        b"E0000 00:00:1795984801.000001   10021 op_kernel.cc:1842] OP_REQUIRES failed: Out of memory\n",
        b"Traceback (most recent call last):\n",
        b"WARNING: something else entirely\n",
        b"  note: oneDNN custom operations are on (quoted by the user)\n",
    ]
    assert all(cli.is_noise(line) for line in noise)
    assert not any(cli.is_noise(line) for line in kept)


def test_filter_keeps_errors_tracebacks_order_and_exit_status(tmp_path):
    # A tool that writes C++-style noise straight to file descriptor 2, real messages around it, then fails.
    script = tmp_path / "bin" / "fake_tool"
    script.parent.mkdir()
    script.write_text(
        "from mocse_tf import cli\n"
        "import os, signal, sys\n"
        "print('out 1', flush=True)\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1.5    7 port.cc:153] oneDNN custom operations are on. Fine.\\n')\n"
        "print('err 1', file=sys.stderr, flush=True)\n"
        "os.write(2, b'E0000 00:00:1.5    7 kernel.cc:9] a real C++ error\\n')\n"
        "if sys.argv[1] == 'signal':\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "os.write(2, b'no newline at the end')\n"
        "raise RuntimeError('boom')\n")
    log = tmp_path / "log.txt"
    for mode in ("raise", "signal"):
        with open(log, "w") as handle:  # stdout and stderr into one file, as `tool > log 2>&1` does
            code = subprocess.run([sys.executable, str(script), mode], stdout=handle, stderr=subprocess.STDOUT,
                                  env=tool_env(), cwd=REPO_ROOT, timeout=60).returncode
        text = log.read_text()
        assert "InitializeLog" not in text and "oneDNN" not in text, text
        assert text.startswith("out 1\nerr 1\nE0000 00:00:1.5    7 kernel.cc:9] a real C++ error\n"), text
        if mode == "raise":
            assert code == 1 and "no newline at the end" in text and text.rstrip().endswith("RuntimeError: boom")
        else:
            assert code == -signal.SIGTERM, code


def test_train_redirected_to_a_file_writes_one_plain_line_per_epoch_and_no_tensorflow_noise(tmp_path):
    log = tmp_path / "train.log"
    with open(log, "w") as handle:  # `bin/train ... > train.log 2>&1`
        code = subprocess.run(
            tool_command("train", "--arch=preact_resnet18", "--width=4", "--dataset=synthetic", "--epochs=3",
                         "--num_train_examples=256", "--num_test_examples=64", "--batch_size=64", "--noexport", "--adv_eps=8",
                         f"--output_dir={tmp_path / 'run'}"),
            stdout=handle, stderr=subprocess.STDOUT, env=tool_env(), timeout=300).returncode
    text = log.read_text()
    assert code == 0, text
    assert not any(c in text for c in "\x1b\r\b"), repr(text[:500])
    assert not any(cli.is_noise(line.encode()) for line in text.splitlines(keepends=True)), text
    assert "absl::InitializeLog" not in text and "oneDNN" not in text and "E0000" not in text, text
    epoch_lines = [line for line in text.splitlines() if line.lower().startswith("epoch")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"], text
    assert all("4/4 steps" in line and "val_accuracy" in line for line in epoch_lines), text
    # A flag that does nothing in this mode is named once, before the work (it used to be recorded silently).
    assert text.startswith("warning: --adv_eps=8.0 has no effect with --adv=none\nepoch 1/3"), text
