"""Shared start-up for the `bin/` tools: clean output and one exit convention.

Importing this module first (as every tool in bin/ does) gives a tool:
- stderr without TensorFlow's C++ start-up noise. Those lines are written by C++ before Python's logging is set
  up, so no setting silences them; the tool is re-run as a child process whose stderr passes through this
  process, which drops exactly the known noise lines (`NOISE`) and forwards everything else unchanged, even
  when the child crashes. Set MOCSE_TF_RAW_STDERR=1 to see the raw stream.
- `run(main)`: bad, unknown or unparsable flags, non-finite float values and a UsageError (the ValueError
  subclass that input checks raise, e.g. `errors.check_choice`) print ONE `error: ...` line on stderr and exit 2;
  --help exits 0.
"""

import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

_CHILD_ENV = "MOCSE_TF_STDERR_FILTERED"
_RAW_ENV = "MOCSE_TF_RAW_STDERR"

# Lines TensorFlow prints on its own at start-up or while running; none of them is about the user's work.
# A glog-style header (`I0000 00:00:1795984766.782394    5530 port.cc:153] `) followed by one of the fragments.
_GLOG_HEADER = rb"[IWE]\d{4} [\d:.]+ +\d+ [\w.-]+:\d+\] "
_NOISE_MESSAGES = (
    rb"oneDNN custom operations are on",  # the oneDNN notice, twice per start
    rb".*oneDNN supports DT_UINT8",  # a uint8 op without a oneDNN kernel falls back to the plain one
    rb"Tensor RefCount not reliable",  # tf.data internals
    rb"This TensorFlow binary is optimized to use available CPU instructions",
    rb"Unable to register cu(?:DNN|FFT|BLAS) factory",  # GPU builds, registered twice
    rb"computation placer already registered",
    rb"TF-TRT Warning: Could not find TensorRT",
)
NOISE = re.compile(rb"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                   rb"|" + _GLOG_HEADER + rb"(?:" + rb"|".join(_NOISE_MESSAGES) + rb")).*\r?\n?$")


def is_noise(line):
    """True for one line (bytes) of TensorFlow start-up/runtime noise."""
    return NOISE.match(line) is not None


def _started_as_tool():
    """True in a bin/ tool run as a script; False under pytest, `python -c` or an interactive session."""
    main = sys.modules.get("__main__")
    return (os.name == "posix" and getattr(main, "__spec__", None) is None and hasattr(main, "__file__")
            and "pytest" not in sys.modules and hasattr(sys, "orig_argv"))


def _set_parent_death_signal():
    """In the child: die with the parent (a `kill -9` of the tool must stop the work, as without the filter)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _in_terminal_foreground():
    """True when this process group is a terminal's foreground group: the terminal sent Ctrl-C to the child too."""
    for fd in (0, 1, 2):
        try:
            if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp():
                return True
        except OSError:
            continue
    return False


def _forward_filtered(read_fd, write_fd, child):
    """Copies the child's stderr to ours line by line, dropping noise, until the child is gone and the pipe drained."""
    import select

    pending = b""

    def emit(data):
        try:
            os.write(write_fd, data)
        except OSError:  # our stderr is closed (e.g. a pipe whose reader left): keep draining
            pass

    open_pipe = True
    while open_pipe:
        ready, _, _ = select.select([read_fd], [], [], 0.2)
        if not ready:
            if pending and not is_noise(pending):  # a partial line (no newline yet): do not hold it back
                emit(pending)
                pending = b""
            if child.poll() is not None:
                # Everything the child wrote is in the pipe already; a process it started may still hold the
                # pipe open, so stop at the first quiet moment instead of waiting for the end of the pipe.
                ready, _, _ = select.select([read_fd], [], [], 0.05)
                if not ready:
                    break
            continue
        chunk = os.read(read_fd, 65536)
        if not chunk:
            open_pipe = False
        pending += chunk
        lines = pending.splitlines(keepends=True)
        pending = lines.pop() if lines and not lines[-1].endswith(b"\n") and open_pipe else b""
        kept = b"".join(line for line in lines if not is_noise(line))
        if kept:
            emit(kept)
    if pending and not is_noise(pending):
        emit(pending)


def _run_filtered_child():
    """Runs this same command as a child with its stderr filtered; exits with the child's status."""
    import signal
    import subprocess

    read_fd, write_fd = os.pipe()
    env = dict(os.environ, **{_CHILD_ENV: "1"})
    child = subprocess.Popen([sys.executable, *sys.orig_argv[1:]], stderr=write_fd, env=env,
                             preexec_fn=_set_parent_death_signal)
    os.close(write_fd)

    def forward(signum, _frame):
        if signum == signal.SIGINT and _in_terminal_foreground():
            return  # the terminal already delivered Ctrl-C to the child, which stops cleanly by itself
        try:
            child.send_signal(signum)
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    _forward_filtered(read_fd, sys.stderr.fileno(), child)
    code = child.wait()
    if code < 0:  # the child died of a signal: die of the same one, so callers see what happened
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    sys.exit(code)


if os.environ.pop(_CHILD_ENV, None):
    _set_parent_death_signal()  # again after exec, in case the parent died before the child started
    if os.getppid() == 1:
        sys.exit(1)
elif _started_as_tool() and not os.environ.get(_RAW_ENV):
    sys.stdout.flush()
    _run_filtered_child()


from absl import app, flags, logging  # noqa: E402

from mocse_tf.errors import UsageError  # noqa: E402,F401  (re-exported for bin/ tools)

_HELP_FLAGS = ("-h", "-?", "--help", "--helpshort", "--helpfull", "--helpxml")


def fail(message):
    """Prints one `error: ...` line on stderr and exits 2."""
    sys.stdout.flush()
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def warn(message):
    """Prints one `warning: ...` line on stderr; the tool carries on."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def given_flags(flag_values=None):
    """Names of the flags set on the command line (or in a flagfile)."""
    flag_values = flag_values or flags.FLAGS
    return {name for name, flag in flag_values._flags().items() if flag.present}


def warn_inactive(inactive, flag_values=None):
    """One warning per (flag, deciding flag, its value) triple: a setting that does nothing in this mode."""
    flag_values = flag_values or flags.FLAGS
    for name, decider, value in inactive:
        warn(f"--{name}={flag_values[name].value} has no effect with --{decider}={value}")


def non_finite_flags(flag_values):
    """`--name=value` for every float flag (or list of floats) holding NaN or an infinity."""
    import math

    found = []
    for name, flag in flag_values._flags().items():
        if name != flag.name:  # short names alias the same flag
            continue
        values = flag.value if isinstance(flag.value, list) else [flag.value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            found.append(f"--{name}={flag.value}")
    return found


def parse_flags(argv):
    """absl flag parsing with the tools' exit convention (the flags_parser of `run`)."""
    if any(arg.split("=", 1)[0] in _HELP_FLAGS for arg in argv[1:]):
        try:
            flags.FLAGS(argv)  # absl prints the help on stdout and exits 1; asking for help is not a failure
        except SystemExit:
            sys.stdout.flush()
            sys.exit(0)
        except flags.Error:
            pass  # a bad flag beside --help: the help was asked for and is printed below
        flags.FLAGS.unparse_flags()
        app.usage(shorthelp=True, writeto_stdout=True)
        sys.exit(0)
    try:
        remaining = flags.FLAGS(argv)
    except flags.Error as err:
        fail(f"{err}; see --help")
    bad = non_finite_flags(flags.FLAGS)
    if bad:
        fail(f"{', '.join(bad)}: a finite number is needed (not nan or inf)")
    return remaining


def run(main, flag_of=None):
    """Runs an absl `main(argv)`; a UsageError (or a flag/file problem) prints `error: ...` and exits 2.

    The error names settings as flags: `name` becomes --name, or --flag_of[name] where a setting's flag is
    spelt differently (e.g. {"models": "model"}).
    """

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)  # TF's INFO lines would bury the tool's own output
        try:
            return main(argv)
        except UsageError as err:
            fail(err.render(flag_of))
        except KeyboardInterrupt:
            import signal

            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not turn this into a traceback
            print("interrupted: rerun the same command to resume from the last checkpoint", file=sys.stderr)
            sys.exit(130)

    app.run(guarded, flags_parser=parse_flags)
