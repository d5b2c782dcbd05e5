"""The per-config-type yz/xz stress order of the shared Zuo et al. files (benchmarks/zuo2020.py).

The Si files' ``Elastic`` configurations have yz and xz exchanged; the other Si config types
and all Mo configurations are stored in the documented order.  The detection reads this
from the data with a small energy+force model, so a wrong order would show up here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mlip_plugin.data import read_configs

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def zuo():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import zuo2020
    finally:
        sys.path.remove(str(BENCHMARKS))
    return zuo2020


@pytest.mark.parametrize("element,swapped", [("Si", {"Elastic"}), ("Mo", set())])
def test_detected_order_per_config_type(shared_data, zuo, element, swapped):
    configs = read_configs(shared_data / "zuo2020" / f"{element}_train.extxyz")
    order, scores = zuo.detect_stress_order(configs, r_cut=5.5)
    assert set(order) == {"AIMD-NVT", "Elastic", "Surface", "Vacancy"}
    assert {t for t, o in order.items() if o == "swap"} == swapped
    for t in swapped:  # a clear decision, not a tie
        assert scores[t]["swap"] < 0.1 * scores[t]["file"]


def test_swap_only_named_types(shared_data, zuo):
    configs = read_configs(shared_data / "zuo2020" / "Si_test.extxyz")
    before = [c.stress.copy() for c in configs]
    zuo.swap_yz_xz(configs, {"Elastic"})
    for c, s in zip(configs, before):
        expected = s[[0, 1, 2, 4, 3, 5]] if c.config_type == "Elastic" else s
        np.testing.assert_array_equal(c.stress, expected)
