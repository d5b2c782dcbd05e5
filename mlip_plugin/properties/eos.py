"""Equation of state: equilibrium volume, energy and bulk modulus from a Birch–Murnaghan fit.

The cell is scaled isotropically over a symmetric range of volumes, internal coordinates
are (optionally) relaxed at each volume, and ASE's third-order Birch–Murnaghan form
``ase.eos.birchmurnaghan`` is fitted by least squares (scipy), whose covariance gives the
fit errors of V0, E0, B and B'.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units
from ase.eos import birchmurnaghan
from scipy.optimize import curve_fit

from mlip_plugin.errors import InputError

from ._common import (
    LATTICES,
    check_calculator,
    check_positive,
    check_relaxation,
    check_structure,
    freeze,
    identify_lattice,
    relax_positions,
)

__all__ = ["EOSSettings", "EOSResult", "equation_of_state"]


@dataclass(frozen=True)
class EOSSettings:
    """Settings of `equation_of_state`.

    Attributes
    ----------
    volume_range : float
        Relative half-width of the volume scan: volumes V_in·(1 ± volume_range).
    n_points : int
        Number of volumes (odd, so the input volume is one of them).
    relax_ions : bool
        Relax internal coordinates at each volume (needed for crystals with free internal
        parameters; a no-op for fcc, bcc and diamond).
    fmax : float
        Force tolerance of those relaxations (eV/Å).
    steps : int
        Step limit of each relaxation.
    """

    volume_range: float = 0.06
    n_points: int = 9
    relax_ions: bool = True
    fmax: float = 1e-4
    steps: int = 500

    def __post_init__(self):
        check_positive("volume_range", self.volume_range)
        if self.volume_range >= 0.5:
            raise InputError(f"setting volume_range={self.volume_range} is too large: it must "
                             "be < 0.5 (a relative volume change); use e.g. 0.06.")
        check_positive("n_points", self.n_points, integer=True)
        if self.n_points < 5:
            raise InputError(f"setting n_points={self.n_points} is too small: a 4-parameter "
                             "Birch-Murnaghan fit needs at least 5 volumes; use 7 or more.")
        if self.n_points % 2 == 0:
            raise InputError(f"setting n_points={self.n_points} is even: the scan is symmetric "
                             "about the input volume and must contain it; use "
                             f"n_points={self.n_points + 1}.")
        check_relaxation(self.fmax, self.steps)

    @classmethod
    def fast(cls) -> EOSSettings:
        return cls(n_points=7, fmax=1e-3, steps=200)


@dataclass
class EOSResult:
    """Result of `equation_of_state`.

    Attributes
    ----------
    v0, e0 : float
        Equilibrium volume per atom (Å^3) and energy per atom (eV).
    bulk_modulus : float
        B (GPa); ``bulk_modulus_prime`` B' (dimensionless).
    a0 : float or None
        Cubic lattice constant (Å) at V0 for fcc, bcc and diamond; None otherwise.
    errors : dict
        One-standard-deviation fit errors of "v0", "e0", "bulk_modulus", "a0" (same units).
    volumes, energies : ndarray, shape (n_points,)
        The scan, per atom (Å^3, eV).
    rms_residual : float
        RMS misfit of the fit (eV/atom).
    structure : Atoms
        The input structure scaled to V0 (no calculator).
    """

    v0: float
    e0: float
    bulk_modulus: float
    bulk_modulus_prime: float
    a0: float | None
    errors: dict
    volumes: np.ndarray
    energies: np.ndarray
    rms_residual: float
    structure: Atoms
    settings: EOSSettings
    units: dict = field(default_factory=lambda: {"v0": "Å^3/atom", "e0": "eV/atom",
                                                 "bulk_modulus": "GPa", "a0": "Å"})



def equation_of_state(calculator, structure: Atoms,
                      settings: EOSSettings | None = None) -> EOSResult:
    """Fit a Birch–Murnaghan equation of state E(V) around ``structure``'s volume.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        Any ASE calculator.
    structure : ase.Atoms
        A periodic crystal, ideally near equilibrium (the scan is centred on its volume).
    settings : EOSSettings, optional
        Defaults to ``EOSSettings()``.

    Returns
    -------
    EOSResult
    """
    settings = settings or EOSSettings()
    atoms0 = check_structure(structure)
    check_calculator(calculator)
    n = len(atoms0)
    factors = np.linspace(1 - settings.volume_range, 1 + settings.volume_range,
                          settings.n_points)
    volumes, energies = [], []
    for f in factors:
        atoms = atoms0.copy()
        atoms.set_cell(atoms0.cell * f ** (1 / 3), scale_atoms=True)
        atoms.calc = calculator
        if settings.relax_ions:
            relax_positions(atoms, fmax=settings.fmax, steps=settings.steps,
                            label=f"the EOS point at V/V_in={f:.3f}")
        volumes.append(atoms.get_volume() / n)
        energies.append(atoms.get_potential_energy() / n)
    volumes, energies = np.array(volumes), np.array(energies)
    params, errors, rms = _fit_birch_murnaghan(volumes, energies)
    e0, b0, bp, v0 = params
    scaled = atoms0.copy()
    scaled.set_cell(atoms0.cell * (v0 * n / atoms0.get_volume()) ** (1 / 3), scale_atoms=True)
    lattice = identify_lattice(atoms0)
    a0 = a0_err = None
    if lattice is not None:
        a0 = float((v0 / LATTICES[lattice.name][2]) ** (1 / 3))
        a0_err = float(a0 * errors[3] / (3 * v0))
    return EOSResult(
        v0=float(v0), e0=float(e0), bulk_modulus=float(b0 / units.GPa),
        bulk_modulus_prime=float(bp), a0=a0,
        errors={"v0": float(errors[3]), "e0": float(errors[0]),
                "bulk_modulus": float(errors[1] / units.GPa), "a0": a0_err},
        volumes=volumes, energies=energies, rms_residual=rms, structure=freeze(scaled),
        settings=settings)


def _fit_birch_murnaghan(volumes: np.ndarray, energies: np.ndarray):
    """Least-squares BM fit; returns (E0, B0 [eV/Å^3], B', V0), their 1σ errors, RMS misfit."""
    curvature = np.polyfit(volumes, energies, 2)
    v_guess = -curvature[1] / (2 * curvature[0])
    if curvature[0] <= 0 or not volumes.min() < v_guess < volumes.max():
        raise InputError("the energy-volume scan has no minimum inside the scanned range "
                         f"[{volumes.min():.3f}, {volumes.max():.3f}] Å^3/atom; start from a "
                         "structure nearer equilibrium or widen volume_range.")
    guess = (energies.min(), 2 * curvature[0] * v_guess, 4.0, v_guess)
    params, cov = curve_fit(birchmurnaghan, volumes, energies, p0=guess, maxfev=20000)
    residual = energies - birchmurnaghan(volumes, *params)
    return params, np.sqrt(np.clip(np.diag(cov), 0, None)), float(np.sqrt(np.mean(residual**2)))
