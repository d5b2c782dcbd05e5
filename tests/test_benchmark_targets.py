"""Targets and test data of the benchmark scripts (benchmarks/kernel.py, zuo2020.py,
silicon_properties.py, kernel_convergence.py): a target is evaluated against the figure it
names, one the run did not measure is listed as not met, and test errors are never taken on
the training file."""

from __future__ import annotations

import importlib
import sys
from argparse import Namespace
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    """``bench(name)`` imports benchmarks/NAME.py."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(BENCHMARKS))


# -- kernel.py / kernel_convergence.py: which files are the test set ---------------------

@pytest.mark.parametrize("extra", [{"table": False}, {}])  # kernel.py / kernel_convergence
def test_train_file_without_test_file_is_refused(bench, extra):
    """``--train FILE`` alone used to test on FILE itself (``args.test or args.train``), so
    the printed "test" MAE were training errors."""
    kernel = bench("kernel")
    with pytest.raises(SystemExit, match="--test"):
        kernel.data_jobs(Namespace(train="a.npz", test=None, data=".", **extra))
    with pytest.raises(SystemExit, match="--train"):
        kernel.data_jobs(Namespace(train=None, test="b.npz", data=".", **extra))
    assert kernel.data_jobs(Namespace(train="a.npz", test="b.npz", data=".", **extra)) == [
        ("a", "a.npz", "b.npz")]


def test_iteration_table_needs_only_the_training_file(bench):
    kernel = bench("kernel")
    jobs = kernel.data_jobs(Namespace(train="a.npz", test=None, data=".", table=True))
    assert [j[:2] for j in jobs] == [("a", "a.npz")]
