"""Atomic writes: whole files, usual permissions, no collisions between writers."""

from __future__ import annotations

import os
import threading

from mlip_plugin._files import write_text_atomic


def test_atomic_write_has_the_usual_permissions_and_leaves_no_temporary(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)  # mkstemp alone gives 0600
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_concurrent_writers_never_mix_or_crash(tmp_path):
    """Fixed temporary names let two writers rename each other's file away (crash) or
    interleave their bytes; unique ones leave one whole document."""
    path = tmp_path / "m.json"
    docs = ["short", "long" * 5000]
    errors = []

    def writer(text):
        try:
            for _ in range(200):
                write_text_atomic(path, text)
        except Exception as err:  # noqa: BLE001 - the test records any failure
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(d,)) for d in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and path.read_text() in docs
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
