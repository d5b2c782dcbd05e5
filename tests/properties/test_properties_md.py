"""NVT MD: stability gate, diffusivity of crystal and liquid, MSD/RDF mathematics."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from mlip_plugin.errors import InputError
from mlip_plugin.properties import (
    MDSettings,
    diffusivity_from_positions,
    nvt_md,
    radial_distribution,
    temperature_gate_false_alarms,
)


@pytest.fixture
def cu_crystal():
    return bulk("Cu", "fcc", a=3.59, cubic=True) * (2, 2, 2)


def test_crystal_diffusivity_is_zero_within_error(emt, cu_crystal):
    result = nvt_md(emt, cu_crystal, MDSettings(temperature=300.0, seed=1))
    assert result.stable and result.failure is None
    assert result.time_reached == pytest.approx(result.total_time)
    assert abs(result.diffusivity) < 3 * result.diffusivity_error
    assert result.diffusivity_error < 0.005
    assert result.temperatures[len(result.temperatures) // 4:].mean() == pytest.approx(300,
                                                                                      rel=0.2)
    # fcc: first RDF peak at the nearest-neighbour distance a/sqrt(2)
    assert result.rdf_r[np.argmax(result.rdf)] == pytest.approx(3.59 / np.sqrt(2), abs=0.1)


@pytest.mark.slow
def test_liquid_diffusivity_is_positive(emt):
    # liquid density (about 10 % below the crystal's), melted at 3000 K, measured at 2000 K
    start = bulk("Cu", "fcc", a=3.59 * 1.035, cubic=True) * (3, 3, 3)
    melt = nvt_md(emt, start, MDSettings(temperature=3000.0, steps=600,
                                         equilibration_steps=100, n_blocks=2, seed=2))
    result = nvt_md(emt, melt.structure, MDSettings(temperature=2000.0, steps=1500,
                                                    equilibration_steps=300, seed=3))
    assert result.stable
    assert result.diffusivity > 3 * result.diffusivity_error
    assert 0.05 < result.diffusivity < 2.0  # Å^2/ps (liquid metals: ~0.1-1)
    assert result.rdf[-20:].mean() == pytest.approx(1.0, abs=0.15)  # no long-range order


def test_collapsing_calculator_fails_the_gate(cu_crystal):
    # negative epsilon: the r^-12 term attracts, nothing stops atoms from merging
    broken = LennardJones(epsilon=-0.05, sigma=2.3, rc=5.0, smooth=True)
    result = nvt_md(broken, cu_crystal, MDSettings(temperature=300.0, steps=2000))
    assert not result.stable
    assert "closer than min_distance" in result.failure
    assert 0 < result.time_reached < result.total_time
    assert np.isnan(result.diffusivity)


@pytest.mark.parametrize("thermostat", ["langevin", "bussi", "nose_hoover_chain"])
def test_thermostats_hold_the_temperature(emt, cu_crystal, thermostat):
    settings = MDSettings(temperature=500.0, thermostat=thermostat, steps=1200,
                          equilibration_steps=200, relaxation_time=50.0, seed=4)
    result = nvt_md(emt, cu_crystal, settings)
    assert result.stable
    assert result.temperatures[20:].mean() == pytest.approx(500.0, rel=0.15)


def test_diffusivity_of_a_random_walk(rng):
    """Gaussian steps of variance s^2 per axis every dt: D = s^2 / (2 dt) exactly."""
    s, dt = 0.1, 0.01
    walk = np.cumsum(rng.normal(0.0, s, (2000, 200, 3)), axis=0)
    d, err, lag, msd = diffusivity_from_positions(walk, dt, n_blocks=5, fit_start=0.0)
    assert d == pytest.approx(s**2 / (2 * dt), abs=4 * err)
    assert err < 0.05 * d
    assert msd[0] == 0.0 and lag[1] == pytest.approx(dt)


def test_common_drift_does_not_count_as_diffusion(rng):
    frozen = np.repeat(rng.normal(size=(1, 50, 3)), 400, axis=0)
    drift = frozen + np.linspace(0, 20, 400)[:, None, None]
    d, err, _, msd = diffusivity_from_positions(drift, 0.01, n_blocks=4)
    assert abs(d) < 1e-12 and np.abs(msd).max() < 1e-20


def test_rdf_of_an_ideal_gas_is_one(rng):
    frames = [Atoms("H2000", positions=rng.uniform(0, 20, (2000, 3)), cell=[20] * 3,
                    pbc=True) for _ in range(3)]
    r, g = radial_distribution(frames, rmax=6.0, nbins=30)
    assert np.mean(g[10:]) == pytest.approx(1.0, abs=0.03)
    assert r[0] == pytest.approx(0.1)


@pytest.mark.parametrize("kwargs, match", [
    ({"thermostat": "berendsen"}, "thermostat='berendsen'"),
    ({"n_blocks": 50}, "n_blocks=50"),
    ({"temperature": -5.0}, "temperature=-5.0"),
    ({"temperature_factor": 1.0}, "temperature_factor"),
    ({"fit_start": 1.5}, "fit_start"),
    ({"min_distance": 0.0}, "min_distance"),
])
def test_md_settings_are_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        MDSettings(**kwargs)


class _NaNAfter(EMT):
    """EMT that returns NaN energies and forces after a number of calls."""

    def __init__(self, good_calls):
        super().__init__()
        self.good_calls = good_calls

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.good_calls -= 1
        if self.good_calls < 0:
            self.results["energy"] = np.nan
            self.results["forces"] = np.full_like(self.results["forces"], np.nan)


def test_non_finite_energies_fail_the_gate(cu_crystal):
    result = nvt_md(_NaNAfter(55), cu_crystal, MDSettings(steps=400, equilibration_steps=0))
    assert not result.stable and "non-finite" in result.failure
    assert result.time_reached == pytest.approx(0.1)  # 5 samples of 10 steps of 2 fs


@pytest.mark.slow
def test_stillinger_weber_md_is_stable(sw):
    si = bulk("Si", "diamond", a=5.431, cubic=True) * (2, 2, 2)
    result = nvt_md(sw, si, MDSettings(temperature=1000.0, timestep=1.0, steps=200,
                                       equilibration_steps=50, sample_interval=5,
                                       n_blocks=2))
    assert result.stable, result.failure


def test_temperature_gate_false_alarm_rate_matches_sampled_maxwell_boltzmann(rng):
    """The χ² law of the gate's false-alarm rate against sampled equilibrium momenta."""
    n_atoms, draws = 6, 40000
    settings = MDSettings(temperature=300.0, temperature_factor=1.6, steps=900,
                          equilibration_steps=100, sample_interval=100, n_blocks=2)
    p = rng.normal(size=(draws, n_atoms, 3))
    p -= p.mean(axis=1, keepdims=True)  # centre of mass at rest: 3N - 3 degrees of freedom
    t = (p**2).sum(axis=(1, 2)) / (3 * n_atoms - 3)  # in units of the target temperature
    f = settings.temperature_factor
    sampled = np.mean((t < 1 / f) | (t > f))
    predicted = temperature_gate_false_alarms(n_atoms, settings) / 8  # 8 production samples
    assert sampled == pytest.approx(predicted, rel=0.05)
    assert temperature_gate_false_alarms(1, settings) == np.inf


def test_small_cells_are_repeated_or_refused(emt):
    # one fcc atom: a stable potential used to fail the gate (NaN velocities of one atom,
    # then temperature swings of a 4-atom cell); the default repeat makes the gate reliable
    result = nvt_md(emt, bulk("Cu", "fcc", a=3.59), MDSettings.fast())
    assert result.stable, result.failure
    assert len(result.structure) == 27
    with pytest.raises(InputError, match=r"supercell=1 gives 4 atoms.*supercell >= 2"):
        nvt_md(emt, bulk("Cu", "fcc", a=3.59, cubic=True), MDSettings(supercell=1))


class _RefusesCu(EMT):
    def calculate(self, atoms=None, *args, **kwargs):
        if "Cu" in atoms.get_chemical_symbols():
            raise InputError("species ['Cu'] are not in the model")
        super().calculate(atoms, *args, **kwargs)


def test_bad_input_raises_instead_of_reading_as_instability(cu_crystal):
    with pytest.raises(InputError, match="not in the model"):
        nvt_md(_RefusesCu(), cu_crystal, MDSettings.fast())
