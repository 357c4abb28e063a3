"""Shared start-up for the `bin/` tools: quiet TensorFlow logs and turn user errors into one clear line."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, logging  # noqa: E402

from mocse_tf.errors import UsageError  # noqa: E402,F401  (re-exported for bin/ tools)


def run(main):
    """Runs an absl `main(argv)`; a UsageError (or a flag/file problem) prints `error: ...` and exits 2."""

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)  # TF's INFO lines would bury the tool's own output
        try:
            return main(argv)
        except UsageError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted: rerun the same command to resume from the last checkpoint", file=sys.stderr)
            sys.exit(130)

    app.run(guarded)
