"""Fixtures of the kernel tests: rMD17 ethanol frames (eV, Å) and a synthetic molecule."""

from __future__ import annotations

import numpy as np
import pytest

from mlip_plugin.data import read_configs
from mlip_plugin.kernels import arrays_from_configs


@pytest.fixture(scope="session")
def ethanol(shared_data):
    """``(R, z, E, F)`` of the 1000 rMD17 ethanol training frames (split 01), in eV and Å."""
    configs = read_configs(shared_data / "rmd17" / "ethanol_rmd17_train_01.npz",
                           require=("energy", "forces"))
    return arrays_from_configs(configs)


@pytest.fixture(scope="session")
def ethanol_test(shared_data):
    configs = read_configs(shared_data / "rmd17" / "ethanol_rmd17_test_01.npz",
                           require=("energy", "forces"))
    return arrays_from_configs(configs[:100])


@pytest.fixture
def make_molecule():
    """Factory: ``n_frames`` random distortions of a 5-atom molecule, positions in Å."""

    def make(n_frames: int, seed: int = 0, scale: float = 0.1) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(seed)
        base = np.array([[0.0, 0.0, 0.0], [1.1, 0.0, 0.0], [-0.4, 1.0, 0.0],
                         [-0.4, -0.5, 0.9], [0.3, 0.2, -1.0]])
        R = base[None] + scale * rng.standard_normal((n_frames, 5, 3))
        z = np.array([6, 1, 1, 1, 8])
        return R, z

    return make
