"""Safe output folders: written under a temporary name beside the target, renamed into place when complete.

An existing output is replaced only with ``force``; an output that is (or contains) an input is always refused;
any failure (including an interrupt) removes the temporary folder, so nothing that looks finished is left behind.
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


def check_output(out_dir: str | Path, *, force: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """Validate an output folder path before any work is done; return it as a Path."""
    out = Path(out_dir)
    where = str(out)
    resolved = out.resolve()
    for source in inputs:
        src = Path(source).resolve()
        if resolved == src or resolved in src.parents:
            raise OutputError(f"is (or contains) the input {source}; choose another output folder", where=where)
    if out.exists() or out.is_symlink():
        if not force:
            raise OutputError("already exists; pass --force to replace it", where=where)
        if not out.is_dir():
            raise OutputError("exists and is not a folder", where=where)
    parent = resolved.parent
    if not parent.is_dir():
        raise OutputError(f"parent folder {parent} does not exist", where=where)
    if not os.access(parent, os.W_OK):
        raise OutputError(f"parent folder {parent} is not writable", where=where)
    return out


@contextmanager
def atomic_output_dir(out_dir: str | Path, *, force: bool = False, inputs: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it becomes ``out_dir`` (replacing it only with ``force``)."""
    out = check_output(out_dir, force=force, inputs=inputs)
    parent = out.resolve().parent
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{out.name}{TEMP_MARK}", dir=parent))
    except OSError as error:
        raise OutputError(f"cannot create a folder beside it: {error.strerror or error}", where=str(out)) from None
    try:
        yield temp
        if out.exists() or out.is_symlink():  # force: move the old one aside, then swap
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}{TEMP_MARK}old-", dir=parent))
            os.rename(out, old / "old")
            try:
                os.rename(temp, out)
            except BaseException:
                os.rename(old / "old", out)  # put the previous output back
                raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(temp, out)
    except LoraLensError:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    except OSError as error:
        shutil.rmtree(temp, ignore_errors=True)
        raise OutputError(f"cannot write: {error.strerror or error}", where=str(out)) from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
