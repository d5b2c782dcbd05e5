"""Elastic constants and equation of state against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from scipy.optimize import minimize_scalar

from mlip_plugin.errors import InputError
from mlip_plugin.properties import (
    ElasticSettings,
    EOSSettings,
    elastic_constants,
    equation_of_state,
)


def _energy_a0(calc, symbol="Cu"):
    """Equilibrium fcc lattice constant by a 1-D minimisation of E(a) (no stress used)."""
    def energy(a):
        atoms = bulk(symbol, "fcc", a=a)
        atoms.calc = calc
        return atoms.get_potential_energy()

    return minimize_scalar(energy, bounds=(3.3, 3.9), method="bounded",
                           options={"xatol": 1e-7}).x


def _curvature(calc, prim, deformation):
    """d²(E/V)/dx² at x=0 (GPa) for the cell deformed by 1 + deformation(x)."""
    xs = np.linspace(-0.006, 0.006, 7)
    energies = []
    for x in xs:
        atoms = prim.copy()
        atoms.set_cell(np.asarray(prim.cell) @ (np.eye(3) + deformation(x)).T, scale_atoms=True)
        atoms.calc = calc
        energies.append(atoms.get_potential_energy() / prim.get_volume())
    return 2 * np.polyfit(xs, energies, 4)[-3] / units.GPa


def _energy_cubic_constants(calc):
    """C11, C12, C44 (GPa) from second derivatives of the energy density: an independent
    finite-strain route (energy, not stress; primitive cell, not matscipy's patterns)."""
    prim = bulk("Cu", "fcc", a=_energy_a0(calc))
    c11 = _curvature(calc, prim, lambda x: np.diag([x, 0.0, 0.0]))
    biaxial = _curvature(calc, prim, lambda x: np.diag([x, x, 0.0]))  # 2 (C11 + C12)
    c44 = _curvature(calc, prim, lambda x: np.array([[0, 0, 0], [0, 0, x / 2],
                                                     [0, x / 2, 0]]))
    return c11, biaxial / 2 - c11, c44


def test_cu_emt_elastic_constants_match_energy_finite_differences(emt, copper):
    result = elastic_constants(emt, copper)
    c11, c12, c44 = _energy_cubic_constants(emt)
    assert result.c11 == pytest.approx(c11, rel=0.01)
    assert result.c12 == pytest.approx(c12, rel=0.01)
    assert result.c44 == pytest.approx(c44, rel=0.01)
    # the values ECOSYSTEM.md lists as verified for Cu/EMT
    assert (result.c11, result.c12, result.c44) == pytest.approx((172.6, 115.4, 89.9), abs=0.3)
    assert result.C.shape == (6, 6) and np.allclose(result.C, result.C.T, atol=1e-6)
    assert np.all(result.C_err >= 0) and max(result.errors.values()) < 1.0
    assert result.cubic_deviation < 0.1
    assert result.bulk_modulus == pytest.approx((c11 + 2 * c12) / 3, rel=0.01)


def test_clamped_ion_equals_relaxed_ion_without_internal_freedom(emt, copper):
    relaxed = elastic_constants(emt, copper, ElasticSettings.fast())
    clamped = elastic_constants(emt, copper, ElasticSettings(relaxed_ion=False, n_steps=3,
                                                             fmax=1e-3))
    assert clamped.c44 == pytest.approx(relaxed.c44, rel=1e-3)
    assert not clamped.relaxed_ion and relaxed.relaxed_ion


def test_si_sw_clamped_ion_c44_exceeds_relaxed_ion(sw):
    cubic = bulk("Si", "diamond", a=5.43, cubic=True)
    relaxed = elastic_constants(sw, cubic)
    clamped = elastic_constants(sw, cubic, ElasticSettings(relaxed_ion=False))
    # internal relaxation lowers C44 of diamond a lot; C11 and C12 have none by symmetry
    assert clamped.c44 > relaxed.c44 + 30.0
    assert clamped.c11 == pytest.approx(relaxed.c11, rel=1e-4)
    assert clamped.c12 == pytest.approx(relaxed.c12, rel=1e-4)
    # published Stillinger-Weber values: C11 151.4, C12 76.4, C44 56.4 GPa (relaxed)
    assert (relaxed.c11, relaxed.c12, relaxed.c44) == pytest.approx((151.4, 76.4, 56.4),
                                                                    abs=0.5)


def test_eos_matches_energy_minimum_and_elastic_bulk_modulus(emt, copper):
    result = equation_of_state(emt, copper)
    assert result.a0 == pytest.approx(_energy_a0(emt), abs=1e-4)
    elastic = elastic_constants(emt, copper, ElasticSettings.fast())
    assert result.bulk_modulus == pytest.approx(elastic.bulk_modulus, rel=0.01)
    assert result.rms_residual < 1e-4 and result.errors["a0"] < 1e-3
    assert result.structure.get_volume() / len(copper) == pytest.approx(result.v0)


def test_elastic_constants_need_stress(no_stress_calc, copper):
    with pytest.raises(InputError, match="does not compute 'stress'"):
        elastic_constants(no_stress_calc, copper)


def test_elastic_constants_report_the_calculators_own_error(emt, silicon):
    """EMT computes stress but has no Si potential: say so, not "does not compute 'stress'"."""
    with pytest.raises(InputError, match="EMT raised NotImplementedError: No EMT-potential "
                                         "for Si") as info:
        elastic_constants(emt, silicon)
    assert "does not compute 'stress'" not in str(info.value)


class _UndeclaredNoStress(Calculator):
    """A calculator without ``implemented_properties`` whose stress is not implemented."""

    implemented_properties = None

    def get_stress(self, atoms=None, voigt=True, apply_constraint=True):
        raise PropertyNotImplementedError("stress not available")


def test_elastic_constants_recognise_an_undeclared_missing_stress(copper):
    with pytest.raises(InputError, match="_UndeclaredNoStress does not compute 'stress'"):
        elastic_constants(_UndeclaredNoStress(), copper)


def test_eos_without_minimum_in_range(emt):
    squeezed = bulk("Cu", "fcc", a=3.0)
    with pytest.raises(InputError, match="no minimum inside the scanned range"):
        equation_of_state(emt, squeezed, EOSSettings(volume_range=0.04))


@pytest.mark.parametrize("kwargs, match", [
    ({"delta": -0.01}, "delta"),
    ({"n_steps": 2}, "n_steps=2"),
    ({"fmax": 0}, "fmax"),
])
def test_elastic_settings_are_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        ElasticSettings(**kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"n_points": 4}, "n_points=4"),
    ({"n_points": 8}, "n_points=8 is even.*n_points=9"),
    ({"volume_range": 0.7}, "volume_range"),
])
def test_eos_settings_are_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        EOSSettings(**kwargs)


def test_structure_must_be_atoms(emt):
    with pytest.raises(InputError, match="must be an ase.Atoms"):
        elastic_constants(emt, [[0, 0, 0]])
