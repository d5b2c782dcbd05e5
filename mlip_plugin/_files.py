"""Atomic file writes shared by every layer (model files, metrics, caches)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a uniquely named temporary file in the same folder,
    flushed to disk and renamed into place with :func:`os.replace`: a killed process never
    leaves a half-written file, and two processes writing the same path never mix their
    contents (the last rename wins).  The file gets the usual permissions (0666 less the
    umask), not the 0600 of a temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    # O_EXCL: a name of our own; mode 0666 less the umask, as for any new file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
