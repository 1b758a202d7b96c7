"""Safe output folders: written under a temporary name beside the target, renamed into place when complete.

An existing output is replaced only with ``force``, and only when it is a folder loralens itself wrote: nothing in
it but regular files, each named like a file of the new output (an earlier output of the same command). A folder
holding anything else (another file, a subfolder, a link; the current folder with ``-o .``) is refused by name,
so ``--force`` never deletes a user's files. An output that is (or contains) an input is always refused. Any
failure (including an interrupt) removes the temporary folders, so nothing that looks finished is left behind.
Outputs follow the umask like any file the user creates (``mkdtemp`` alone would make every folder 0700).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from loralens.errors import LoraLensError, OutputError

TEMP_MARK = ".loralens-tmp-"
_ACTIVE: set[Path] = set()  # temporary folders being written (removed by remove_active on Ctrl-C)
MAX_REPLACED_ENTRIES = 64  # a folder loralens wrote holds a few files (sharded merges: one per shard)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _absolute(out_dir: str | Path) -> Path:
    """The output as an absolute path, "." and ".." resolved but a final symlink kept (it is what is replaced)."""
    return Path(os.path.abspath(out_dir))


def foreign_entries(folder: Path, names: Iterable[str] | None = None) -> list[str]:
    """Entries of ``folder`` that loralens did not write: anything not a regular file, and (given ``names``, what
    the new output holds) any file not named like one of them. Empty: ``folder`` may be replaced."""
    allowed = None if names is None else set(names)
    foreign = []
    with os.scandir(folder) as entries:
        for count, entry in enumerate(entries):
            if count >= MAX_REPLACED_ENTRIES:
                foreign.append(f"more than {MAX_REPLACED_ENTRIES} entries")
                break
            if not entry.is_file(follow_symlinks=False) or (allowed is not None and entry.name not in allowed):
                foreign.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    return sorted(foreign)


def _refuse_foreign(out: Path, where: str, names: Iterable[str] | None = None) -> None:
    foreign = foreign_entries(out, names)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OutputError(f"holds files loralens did not write ({shown}); --force replaces only an earlier "
                          "loralens output: choose another folder", where=where)


def check_output(out_dir: str | Path, *, force: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """Validate an output folder path before any work is done; return it as a Path."""
    where = str(out_dir)
    out = _absolute(out_dir)
    resolved = out.resolve()
    for source in inputs:
        src = Path(source).resolve()
        if resolved == src or resolved in src.parents:
            raise OutputError(f"is (or contains) the input {source}; choose another output folder", where=where)
    if out.exists() or out.is_symlink():
        if not force:
            raise OutputError("already exists; pass --force to replace it", where=where)
        if out.is_symlink() or not out.is_dir():
            raise OutputError("exists and is not a folder", where=where)
        try:
            _refuse_foreign(out, where)
        except OSError as error:
            raise OutputError(f"cannot read it: {error.strerror or error}", where=where) from None
    parent = resolved.parent
    if not parent.is_dir():
        raise OutputError(f"parent folder {parent} does not exist", where=where)
    if not os.access(parent, os.W_OK):
        raise OutputError(f"parent folder {parent} is not writable", where=where)
    return out


@contextmanager
def atomic_output_dir(out_dir: str | Path, *, force: bool = False, inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it becomes ``out_dir`` (replacing it only with ``force`` and
    only when it is an earlier loralens output)."""
    where = str(out_dir)
    out = check_output(out_dir, force=force, inputs=inputs)
    parent = out.resolve().parent
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TEMP_MARK}", dir=parent))
        os.chmod(temp, 0o777 & ~_umask())
    except OSError as error:
        raise OutputError(f"cannot create a folder beside it: {error.strerror or error}", where=where) from None
    old: Path | None = None
    _ACTIVE.add(temp)
    try:
        yield temp
        if out.exists() or out.is_symlink():  # force: move the old one aside, then swap
            _refuse_foreign(out, where, names=os.listdir(temp))
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}{TEMP_MARK}old-", dir=parent))
            os.rename(out, old / "old")
            try:
                os.rename(temp, out)
            except BaseException:
                os.rename(old / "old", out)  # put the previous output back
                raise
        else:
            os.rename(temp, out)
    except LoraLensError:
        raise
    except OSError as error:
        raise OutputError(f"cannot write: {error.strerror or error}", where=where) from None
    finally:
        _ACTIVE.discard(temp)
        shutil.rmtree(temp, ignore_errors=True)  # gone already after a successful rename
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def remove_active() -> None:
    """Remove every temporary output folder still being written (the command was interrupted in another thread)."""
    for temp in list(_ACTIVE):
        shutil.rmtree(temp, ignore_errors=True)
        _ACTIVE.discard(temp)
