"""Which run owns an output folder, so that two commands never write into one folder unnoticed.

A command that writes a folder (a training run, a search, an export, an evaluation) first claims it: an empty or
new folder gets a record of its owner (by default `owner.json`: the tool and the settings that decide what it
writes; bin/train's run_config.json and bin/tune's search_config.json are others); a folder holding the same owner
is resumed; a folder made by another tool or configuration is refused before any work, unless the user asks to
overwrite it. Claiming also removes the temporary files and folders (`*.tmp-<pid>*`) that a killed process left
behind.
"""

import os
import re

from mocse_tf.errors import UsageError
from mocse_tf.files import read_json, remove, write_json

OWNER_FILE = "owner.json"
# Temporary names used by the atomic writers: x.json.tmp-<pid>, model.keras.tmp-<pid>.keras, .tmp-<version>-<pid>.
_TEMPORARY = re.compile(r"\.tmp-(?:\d+-)?(\d+)(?:\.\w+)?$")
# How the refusals read ({folder}, {way_out}, {files}, {differences}); a caller may reword any of them.
TEXTS = {
    "cannot": "cannot write {folder}",
    "unrecorded": "{folder} already holds files ({files}) and no record of the run that made them; choose another "
                  "folder or empty that one yourself (`overwrite` replaces only the output of another run)",
    "different": "{folder} belongs to another run ({differences}); {way_out}",
}


class FolderOwnedByOther(UsageError):
    """The folder holds the output of another command or configuration."""


def _process_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def stale_temporaries(folder):
    """Paths in `folder` of temporaries whose writing process no longer runs."""
    if not os.path.isdir(folder):
        return []
    found = []
    for name in sorted(os.listdir(folder)):
        match = _TEMPORARY.search(name)
        if match and not _process_alive(int(match.group(1))):
            found.append(os.path.join(folder, name))
    return found


def remove_stale_temporaries(folder):
    """Removes what a killed process left half-written in `folder`; returns the removed paths."""
    removed = stale_temporaries(folder)
    for path in removed:
        remove(path)
    return removed


def differences(stored, record, keys=None):
    """`key=old there vs new now` for each of `keys` whose value differs between the `stored` record and this one.
    Without `keys` both are owner records: another tool is the one difference, else every setting is compared."""
    if keys is None:
        if stored.get("tool") != record.get("tool"):
            return [f"made by {stored.get('tool')}, not {record.get('tool')}"]  # its settings are another tool's
        stored, record = stored.get("settings", {}), record.get("settings", {})
        keys = sorted(set(stored) | set(record))
    return [f"{k}={stored.get(k)!r} there vs {record.get(k)!r} now" for k in keys if stored.get(k) != record.get(k)]


def check_writable(folder, cannot=TEXTS["cannot"]):
    """Raises UsageError unless `folder`, or the nearest existing folder above it, can be written (checked before
    any work, so that the results of a long run are never lost to a folder that cannot take them)."""
    cannot = cannot.format(folder=folder)
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"{cannot}: {existing} is a file, not a folder; choose another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"{cannot}: {existing} is not writable; choose a writable folder")


def check(folder, record, way_out, overwrite=False, file=OWNER_FILE, keys=None, texts=None):
    """Returns "new" (absent, or holding nothing but a record and stale temporaries), "ours" (the same record),
    "foreign" (another run's record, and `overwrite` is set) or raises FolderOwnedByOther naming the differences
    and `way_out`. Also checks that the folder can be written.

    `record`: what the folder's record `file` holds for this run, compared on `keys` (see `differences`; the
    default owner record is {"tool": name, "settings": {...}}); `way_out`: the fix to name, e.g. "choose another
    `output_dir` or pass `overwrite`"; `texts`: rewordings of TEXTS.
    """
    texts = {**TEXTS, **(texts or {})}
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FolderOwnedByOther(f"{folder} is a file, not a folder; choose another folder name")
    check_writable(folder, texts["cannot"])
    if not os.path.isdir(folder):
        return "new"
    try:
        stored = read_json(os.path.join(folder, file))
    except (OSError, ValueError):
        stored = None
    found = differences(stored, record, keys) if isinstance(stored, dict) else None
    if found == []:
        return "ours"
    stale = set(stale_temporaries(folder))
    contents = sorted(n for n in os.listdir(folder) if n != file and os.path.join(folder, n) not in stale)
    if not contents:
        return "new"  # nothing written yet (e.g. a claim whose work then failed): nothing to protect
    if found is None:  # never emptied, even when asked to overwrite: `overwrite` replaces another run's output
        raise FolderOwnedByOther(texts["unrecorded"].format(folder=folder, files=", ".join(contents[:3]),
                                                            way_out=way_out))
    if overwrite:
        return "foreign"
    raise FolderOwnedByOther(texts["different"].format(folder=folder, differences="; ".join(found[:3]),
                                                       way_out=way_out))


def claim(folder, record, way_out, overwrite=False, file=OWNER_FILE, keys=None, texts=None):
    """Checks `folder` (see `check`), empties it first when `overwrite` and it belongs to another run, writes the
    record and removes stale temporaries. Returns True when the folder already belonged to this run."""
    texts = {**TEXTS, **(texts or {})}
    state = check(folder, record, way_out, overwrite, file, keys, texts)
    if state == "foreign":  # overwrite: everything inside goes, the folder itself stays
        for name in os.listdir(folder):
            remove(os.path.join(folder, name))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UsageError(f"{texts['cannot'].format(folder=folder)}: {err.strerror or err}; choose a writable "
                         f"folder") from None
    remove_stale_temporaries(folder)
    if state != "ours":
        write_json(os.path.join(folder, file), record)
    return state == "ours"
