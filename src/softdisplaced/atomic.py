"""Atomic output files: write to a temporary sibling, then rename.

Nothing already produced is lost or half-written: if the writer raises, the
temporary file is removed and the destination (if it existed) is untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None, keep_name: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the destination's directory; rename on success.

    The temporary file keeps the destination's suffix (``.root``, ``.h5`` ...)
    so that libraries choosing a format from the extension still work. With
    ``keep_name`` it is ``<hidden temporary directory>/<destination name>``, for
    formats that record their own file name (ROOT does), so the bytes do not
    depend on the temporary name.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sfx = dest.suffix if suffix is None else suffix
    tmp_dir = None
    if keep_name:
        tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
        tmp_path = tmp_dir / dest.name
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=f".tmp{sfx}", dir=dest.parent)
        os.close(fd)
        tmp_path = Path(tmp)
    try:
        yield tmp_path
        if not tmp_path.exists():
            raise RuntimeError(f"writer did not produce {tmp_path} for {dest}")
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; use the usual mode
        os.replace(tmp_path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
    finally:
        if tmp_dir is not None:
            shutil.rmtree(tmp_dir, ignore_errors=True)


# the temporary siblings ``atomic_path`` creates: ``.<name>.<8 random characters>.tmp[<suffix>]``
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


def remove_stale_temporaries(root: str | os.PathLike) -> list[Path]:
    """Remove the temporary files and directories of ``atomic_path`` under ``root`` that a killed
    writer left behind; returns them.  Only call it when no writer is running there (the workflow
    does so at its start, once Snakemake holds the directory lock)."""
    root = Path(root)
    if not root.is_dir():
        return []
    stale = sorted(p for p in root.rglob(".*.tmp*") if _TEMPORARY.match(p.name))
    removed = []
    for p in stale:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        removed.append(p)
    return removed


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write ``text`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj, **kwargs) -> Path:
    """Atomically write ``obj`` as pretty, key-sorted JSON (deterministic bytes)."""
    kwargs.setdefault("indent", 2)
    kwargs.setdefault("sort_keys", True)
    return write_text(path, json.dumps(obj, **kwargs) + "\n")
