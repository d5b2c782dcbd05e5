"""Elastic constants: the full 6×6 Voigt matrix from stress–strain fits.

Each of the six Voigt strain components is applied alone at ``n_steps`` amplitudes
(``-delta·(n_steps-1)/2 … +delta·(n_steps-1)/2``, zero included) to the relaxed crystal
(``matscipy.elasticity.generate_strained_configs``).  Relaxed-ion constants (the default,
what experiment and DFT tables report) relax the internal coordinates at every strain;
clamped-ion constants keep the atoms on the homogeneously strained positions.  The
stress–strain slopes and their standard errors come from
``matscipy.elasticity.fit_elastic_constants``.  For cubic crystals the summary C11, C12,
C44 averages the symmetry-equivalent entries, and B is the Voigt bulk modulus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from matscipy.elasticity import fit_elastic_constants, generate_strained_configs

from mlip_plugin.errors import InputError

from ._common import (
    check_calculator,
    check_positive,
    check_relaxation,
    check_structure,
    freeze,
    relax_positions,
    relaxed_bulk,
)

__all__ = ["ElasticSettings", "ElasticResult", "elastic_constants"]


@dataclass(frozen=True)
class ElasticSettings:
    """Settings of `elastic_constants`.

    Attributes
    ----------
    relaxed_ion : bool
        Relax internal coordinates at every strain (default) or keep them clamped.
    delta : float
        Strain increment; amplitudes run over ±delta·(n_steps−1)/2.
    n_steps : int
        Number of strain amplitudes per Voigt component (≥ 3, odd recommended).
    relax_bulk : bool
        Relax cell and positions of the input crystal first (needs stress, as the fit does).
    fmax : float
        Force tolerance of all relaxations (eV/Å).
    steps : int
        Step limit of each relaxation.
    """

    relaxed_ion: bool = True
    delta: float = 0.005
    n_steps: int = 5
    relax_bulk: bool = True
    fmax: float = 1e-4
    steps: int = 1000

    def __post_init__(self):
        check_positive("delta", self.delta)
        check_positive("n_steps", self.n_steps, integer=True)
        if self.n_steps < 3:
            raise InputError(f"setting n_steps={self.n_steps} gives no error estimate: use "
                             "n_steps >= 3 strain amplitudes per component.")
        check_relaxation(self.fmax, self.steps)

    @classmethod
    def fast(cls) -> ElasticSettings:
        return cls(n_steps=3, fmax=1e-3, steps=300)


@dataclass
class ElasticResult:
    """Result of `elastic_constants`.

    Attributes
    ----------
    C, C_err : ndarray, shape (6, 6)
        Voigt stiffness matrix and the standard errors of its fitted entries (GPa).
    c11, c12, c44, bulk_modulus : float
        Cubic summary (GPa): means over equivalent entries; B = Voigt bulk modulus.
    errors : dict
        Standard errors of c11, c12, c44, bulk_modulus (GPa).
    cubic_deviation : float
        Largest |C − C_cubic(c11, c12, c44)| (GPa); large values mean the cubic summary
        does not describe this crystal (or it is not in its cubic axes).
    relaxed_ion : bool
        Which constants these are.
    structure : Atoms
        The (relaxed) reference crystal.
    """

    C: np.ndarray
    C_err: np.ndarray
    c11: float
    c12: float
    c44: float
    bulk_modulus: float
    errors: dict
    cubic_deviation: float
    relaxed_ion: bool
    structure: Atoms
    settings: ElasticSettings
    units: str = "GPa"


def elastic_constants(calculator, structure: Atoms,
                      settings: ElasticSettings | None = None) -> ElasticResult:
    """Full 6×6 elastic constants of ``structure`` from stress–strain fits.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        Any ASE calculator that computes stress (eV/Å^3).
    structure : ase.Atoms
        The crystal; its Cartesian axes are the axes of C (use cubic axes for a cubic
        summary, e.g. ``ase.build.bulk("Cu", cubic=True)``).
    settings : ElasticSettings, optional

    Returns
    -------
    ElasticResult

    Raises
    ------
    InputError
        If the calculator does not compute stress.
    """
    settings = settings or ElasticSettings()
    structure = check_structure(structure)
    check_calculator(calculator, need_stress=True, what="elastic constants", probe=structure)
    atoms = relaxed_bulk(calculator, structure, relax=settings.relax_bulk, fmax=settings.fmax,
                         steps=settings.steps)
    configs = list(generate_strained_configs(atoms, "triclinic", settings.n_steps,
                                             settings.delta))
    if settings.relaxed_ion:
        for k, config in enumerate(configs):
            relax_positions(config, fmax=settings.fmax, steps=settings.steps,
                            label=f"strained configuration {k}")
    C, C_err = fit_elastic_constants(configs, "triclinic", settings.n_steps, settings.delta,
                                     verbose=False)
    C, C_err = C / units.GPa, C_err / units.GPa
    summary, errors = cubic_summary(C, C_err)
    cubic = _cubic_matrix(summary["c11"], summary["c12"], summary["c44"])
    return ElasticResult(C=C, C_err=C_err, **summary, errors=errors,
                         cubic_deviation=float(np.abs(C - cubic).max()),
                         relaxed_ion=settings.relaxed_ion, structure=freeze(atoms),
                         settings=settings)


def cubic_summary(C: np.ndarray, C_err: np.ndarray) -> tuple[dict, dict]:
    """Cubic averages c11, c12, c44 and the Voigt bulk modulus of a 6×6 matrix, with errors.

    Errors of the averages assume independent entries: sqrt(Σ err²)/n.
    """
    groups = {"c11": [(0, 0), (1, 1), (2, 2)], "c12": [(0, 1), (0, 2), (1, 2)],
              "c44": [(3, 3), (4, 4), (5, 5)]}
    values, errors = {}, {}
    for name, idx in groups.items():
        rows, cols = zip(*idx)
        values[name] = float(np.mean(C[rows, cols]))
        errors[name] = float(np.sqrt(np.sum(C_err[rows, cols] ** 2)) / len(idx))
    values["bulk_modulus"] = (values["c11"] + 2 * values["c12"]) / 3
    errors["bulk_modulus"] = float(np.hypot(errors["c11"], 2 * errors["c12"]) / 3)
    return values, errors


def _cubic_matrix(c11: float, c12: float, c44: float) -> np.ndarray:
    C = np.zeros((6, 6))
    C[:3, :3] = c12
    C[np.arange(3), np.arange(3)] = c11
    C[np.arange(3, 6), np.arange(3, 6)] = c44
    return C
