"""Which run owns an output folder, so that two commands never write into one folder unnoticed.

A command that writes a folder (an export folder, an evaluation folder) first claims it: an empty or new folder
gets an owner record (`owner.json`: the tool and the settings that decide what it writes); a folder holding the
same owner is resumed; a folder made by another tool or configuration is refused before any work, unless the
user asks to overwrite it. Claiming also removes the temporary files and folders (`*.tmp-<pid>*`) that a killed
process left behind.
"""

import os
import re
import shutil

from mocse_tf.errors import UsageError
from mocse_tf.files import read_json, write_json

OWNER_FILE = "owner.json"
# Temporary names used by the atomic writers: x.json.tmp-<pid>, model.keras.tmp-<pid>.keras, .tmp-<version>-<pid>.
_TEMPORARY = re.compile(r"\.tmp-(?:\d+-)?(\d+)(?:\.\w+)?$")


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
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
    return removed


def empty_folder(folder):
    """Deletes everything inside `folder` (for an explicit overwrite), keeping the folder itself."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.remove(path)


def read_owner(folder):
    try:
        return read_json(os.path.join(folder, OWNER_FILE))
    except (OSError, ValueError):
        return None


def differences(stored, owner):
    """`key=old there vs new now` for each setting that differs (the tool first)."""
    found = []
    if stored.get("tool") != owner.get("tool"):
        return [f"made by {stored.get('tool')}, not {owner.get('tool')}"]  # its settings are another tool's
    old, new = stored.get("settings", {}), owner.get("settings", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            found.append(f"{key}={old.get(key)!r} there vs {new.get(key)!r} now")
    return found


def check_writable(folder):
    """Raises UsageError unless `folder`, or the nearest existing folder above it, can be written (checked before
    any work, so that the results of a long run are never lost to a folder that cannot take them)."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"cannot write {folder}: {existing} is a file, not a folder; choose another folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {folder}: {existing} is not writable; choose a writable folder")


def check(folder, owner, way_out, overwrite=False):
    """Returns "new" (absent or empty), "ours" (same owner), "foreign" (another owner, and `overwrite` is set) or
    raises FolderOwnedByOther naming the owner and `way_out`. Also checks that the folder can be written.

    `owner`: {"tool": name, "settings": {...}} (JSON values); `way_out`: the fix to name, e.g.
    "choose another `output_dir` or pass `overwrite`".
    """
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FolderOwnedByOther(f"{folder} is a file, not a folder; choose another folder name")
    check_writable(folder)
    if not os.path.isdir(folder):
        return "new"
    stale = set(stale_temporaries(folder))
    contents = [n for n in os.listdir(folder) if os.path.join(folder, n) not in stale]
    if not [n for n in contents if n != OWNER_FILE]:
        return "new"  # nothing written yet (e.g. a claim whose work then failed): nothing to protect
    stored = read_owner(folder)
    if overwrite and (stored is None or differences(stored, owner)):
        return "foreign"
    if stored is None:
        raise FolderOwnedByOther(f"{folder} already holds files ({', '.join(sorted(contents)[:3])}) and no record "
                                 f"of the run that made them; {way_out}")
    found = differences(stored, owner)
    if found:
        raise FolderOwnedByOther(f"{folder} belongs to another run ({'; '.join(found[:3])}); {way_out}")
    return "ours"


def claim(folder, owner, way_out, overwrite=False):
    """Checks `folder` (see `check`), empties it first when `overwrite` and it belongs to another run, writes the
    owner record and removes stale temporaries. Returns True when the folder already belonged to this owner."""
    state = check(folder, owner, way_out, overwrite)
    if state == "foreign":
        empty_folder(folder)
        state = "new"
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot write {folder}: {err.strerror or err}; choose a writable folder") from None
    remove_stale_temporaries(folder)
    if state == "new":
        write_json(os.path.join(folder, OWNER_FILE), owner)
    return state == "ours"
