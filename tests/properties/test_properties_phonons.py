"""Phonons: Γ frequencies against a hand-built Hessian, stability checks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from scipy.integrate import trapezoid

from mlip_plugin.errors import InputError
from mlip_plugin.properties import PhononSettings, phonons


def _gamma_frequencies_by_hand(calc, atoms, h=1e-3):
    """Γ-point frequencies (THz): at Γ the dynamical matrix is the mass-weighted Hessian of
    the periodic primitive cell itself, here from central differences of the forces."""
    atoms = atoms.copy()
    atoms.calc = calc
    n = len(atoms)
    hessian = np.zeros((3 * n, 3 * n))
    for k in range(3 * n):
        forces = []
        for sign in (1, -1):
            atoms.positions[k // 3, k % 3] += sign * h
            forces.append(atoms.get_forces().ravel())
            atoms.positions[k // 3, k % 3] -= sign * h
        hessian[k] = -(forces[0] - forces[1]) / (2 * h)
    mass = np.repeat(atoms.get_masses(), 3)
    eig = np.linalg.eigvalsh(0.5 * (hessian + hessian.T) / np.sqrt(np.outer(mass, mass)))
    omega = np.sign(eig) * np.sqrt(np.abs(eig) * units._e / units._amu) * 1e10  # rad/s
    return omega / (2 * np.pi) / 1e12


def test_si_sw_phonons_stable_and_gamma_matches_hessian(sw):
    prim = bulk("Si", "diamond", a=4 * 2 ** (1 / 6) * 2.0951 / np.sqrt(3))
    result = phonons(sw, prim, PhononSettings(supercell=(3, 3, 3)))
    assert not result.has_imaginary
    assert result.min_frequency > -1e-3
    hand = _gamma_frequencies_by_hand(sw, prim)
    assert np.sort(result.gamma_frequencies) == pytest.approx(np.sort(hand), abs=0.02)
    assert result.gamma_frequencies.max() == pytest.approx(17.83, abs=0.05)
    assert result.max_frequency >= result.gamma_frequencies.max() - 1e-6
    assert len(result.labels) == len(result.distances)
    assert result.labels[0][0] == result.labels[2][1] == r"$\Gamma$"
    assert result.dos.shape == result.dos_frequencies.shape and result.dos.sum() > 0


def test_phonons_use_the_masses_of_the_structure(sw):
    """Masses set on the structure (an isotope, here one atom four times heavier) are those
    of the dynamical matrix: the Γ frequencies are the Hessian's weighted by them."""
    prim = bulk("Si", "diamond", a=4 * 2 ** (1 / 6) * 2.0951 / np.sqrt(3))
    prim.set_masses([28.0855, 4 * 28.0855])
    result = phonons(sw, prim, PhononSettings(supercell=(3, 3, 3), relax_bulk=False))
    hand = _gamma_frequencies_by_hand(sw, prim)
    assert np.sort(result.gamma_frequencies) == pytest.approx(np.sort(hand), abs=0.02)
    assert result.gamma_frequencies.max() < 17.83 - 3  # lighter than the tabulated mass


def test_cu_emt_phonons_acoustic_at_gamma(emt):
    result = phonons(emt, bulk("Cu", "fcc", a=3.6), PhononSettings.fast())
    assert not result.has_imaginary
    assert np.abs(result.gamma_frequencies).max() < 1e-3  # three acoustic modes only
    assert 6.0 < result.max_frequency < 10.0
    dos_integral = trapezoid(result.dos, result.dos_frequencies)
    assert dos_integral == pytest.approx(3.0, rel=0.05)  # 3 modes per atom


def test_bcc_copper_is_dynamically_unstable(emt):
    """bcc Cu is unstable (C' < 0 for EMT): the imaginary-mode check must fire."""
    result = phonons(emt, bulk("Cu", "bcc", a=2.87), PhononSettings.fast())
    assert result.has_imaginary and result.min_frequency < -0.5


@pytest.mark.parametrize("kwargs, match", [
    ({"supercell": (2, 2)}, "supercell"),
    ({"supercell": (2, 0, 2)}, "supercell"),
    ({"displacement": 0.0}, "displacement=0.0"),
    ({"imaginary_tolerance": -1.0}, "imaginary_tolerance"),
])
def test_phonon_settings_are_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        PhononSettings(**kwargs)


@pytest.mark.parametrize("supercell", [(1, 1, 1), (2, 1, 1)])
def test_supercell_where_an_atom_neighbours_its_own_image_is_refused(emt, supercell):
    """With one fcc atom the displaced atom moved all its images: every force constant was
    zero and the result read as stable, all frequencies 0 THz; (2, 1, 1) lost the force
    constants along two cell vectors (maximum 6.6 THz instead of 8.1)."""
    prim = bulk("Cu", "fcc", a=3.59)
    with pytest.raises(InputError, match=re.escape(f"supercell={supercell} is too small")
                       + r".*own periodic image \(2.539 Å.*at least supercell=\(2, 2, 2\)"):
        phonons(emt, prim, PhononSettings(supercell=supercell, relax_bulk=False))
    # where the images are farther than the nearest neighbours one cell is enough
    conventional = phonons(emt, bulk("Cu", "fcc", a=3.59, cubic=True),
                           PhononSettings(supercell=(1, 1, 1), npoints=5, relax_bulk=False))
    assert conventional.max_frequency == pytest.approx(8.14, abs=0.01)


def test_cu_emt_phonons_converged_in_supercell_size(emt):
    prim = bulk("Cu", "fcc", a=3.6)
    small = phonons(emt, prim, PhononSettings(supercell=(3, 3, 3), npoints=11))
    large = phonons(emt, prim, PhononSettings(supercell=(4, 4, 4), npoints=11))
    assert small.max_frequency == pytest.approx(large.max_frequency, rel=0.01)
    assert np.concatenate(small.frequencies).ravel() == pytest.approx(
        np.concatenate(large.frequencies).ravel(), abs=0.1)
