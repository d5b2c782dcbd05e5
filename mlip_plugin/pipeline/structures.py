"""Training-structure protocols in the spirit of Zuo et al. 2020.

For one element and lattice: the ground state, strained cells (volumetric and shear, −10 %
… +10 %), rattled supercells, vacancy supercells, low-index slabs, and NVT snapshots at
several temperatures run with the reference calculator itself (with and without a vacancy).
Every structure carries ``info["config_type"]`` and a stable ``info["structure_id"]``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, replace

import numpy as np
from ase import Atoms, units
from ase.build import bulk, surface
from ase.data import atomic_numbers, reference_states

from ..errors import InputError

__all__ = ["StructureSpec", "PRESETS", "generate_structures", "lattice_constant"]

log = logging.getLogger(__name__)

LATTICES = ("fcc", "bcc", "diamond", "sc")


@dataclass(frozen=True)
class StructureSpec:
    """What to generate.  Counts are per kind; temperatures in K; strains as fractions.

    ``preset`` names the defaults the other fields were taken from (``tiny`` for tests,
    ``demo`` for ``mlip demo``, ``standard`` for production); :meth:`from_preset` builds one.
    """

    element: str = "Cu"
    lattice: str = "fcc"
    a: float | None = None
    supercell: int = 2
    n_volumetric: int = 5
    max_volumetric_strain: float = 0.10
    n_shear: int = 4
    max_shear_strain: float = 0.05
    n_rattled: int = 6
    rattle_std: float = 0.08
    n_vacancy: int = 3
    slabs: tuple[tuple[int, int, int], ...] = ((1, 0, 0), (1, 1, 0), (1, 1, 1))
    slab_layers: int = 4
    slab_vacuum: float = 8.0
    md_temperatures: tuple[float, ...] = (300.0, 1000.0)
    md_snapshots: int = 3
    md_steps_between: int = 20
    md_timestep_fs: float = 2.0
    md_with_vacancy: bool = True
    seed: int = 0
    preset: str = "custom"

    def __post_init__(self):
        if self.element not in atomic_numbers:
            raise InputError(f"element={self.element!r} is not a chemical symbol")
        if self.lattice not in LATTICES:
            raise InputError(f"lattice={self.lattice!r} is not one of {LATTICES}")
        if self.supercell < 1:
            raise InputError(f"supercell={self.supercell} must be >= 1")
        if not 0 <= self.max_volumetric_strain < 0.5:
            raise InputError(
                f"max_volumetric_strain={self.max_volumetric_strain} must be in [0, 0.5)")
        for name in ("n_volumetric", "n_shear", "n_rattled", "n_vacancy", "md_snapshots"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}={getattr(self, name)} must be >= 0")

    @classmethod
    def from_preset(cls, preset: str = "tiny", **overrides) -> StructureSpec:
        if preset not in PRESETS:
            raise InputError(f"preset={preset!r} is not one of {sorted(PRESETS)}")
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown structure settings {sorted(unknown)}; allowed: "
                             f"{sorted(cls.__dataclass_fields__)}")
        if "slabs" in overrides:
            overrides["slabs"] = tuple(tuple(int(i) for i in m) for m in overrides["slabs"])
        if "md_temperatures" in overrides:
            overrides["md_temperatures"] = tuple(float(t) for t in overrides["md_temperatures"])
        return replace(PRESETS[preset], **overrides)

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    "tiny": StructureSpec(supercell=2, n_volumetric=4, n_shear=3, n_rattled=4, n_vacancy=2,
                          slabs=((1, 1, 1),), slab_layers=4, md_temperatures=(600.0,),
                          md_snapshots=2, preset="tiny"),
    "demo": StructureSpec(supercell=2, n_volumetric=7, n_shear=10, n_rattled=12, n_vacancy=6,
                          slabs=((1, 0, 0), (1, 1, 0), (1, 1, 1)), slab_layers=4,
                          md_temperatures=(300.0, 800.0), md_snapshots=4, preset="demo"),
    "standard": StructureSpec(supercell=3, n_volumetric=9, n_shear=12, n_rattled=20,
                              n_vacancy=10, md_temperatures=(300.0, 900.0, 1500.0),
                              md_snapshots=8, md_steps_between=40, preset="standard"),
}


def lattice_constant(element: str, lattice: str, calculator=None) -> float:
    """Lattice constant in Å: relaxed with ``calculator`` (equation of state) if given,
    else ASE's tabulated value for the element."""
    ref = reference_states[atomic_numbers[element]] or {}
    a_guess = ref.get("a")
    if a_guess is None or ref.get("symmetry") not in (lattice, None):
        a_guess = {"fcc": 4.0, "bcc": 3.2, "diamond": 5.4, "sc": 2.7}[lattice]
        log.warning("no tabulated %s lattice constant for %s; starting from %.2f Å",
                    lattice, element, a_guess)
    if calculator is None:
        return float(a_guess)
    from ase.eos import EquationOfState

    volumes, energies = [], []
    for s in np.linspace(0.97, 1.03, 7):
        atoms = bulk(element, lattice, a=a_guess * s, cubic=True)
        atoms.calc = calculator
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    return float(v0 ** (1 / 3))  # the cubic conventional cell has volume a³


def _tag(atoms: Atoms, config_type: str, sid: str) -> Atoms:
    atoms.info["config_type"] = config_type
    atoms.info["structure_id"] = sid
    return atoms


def _strained(base: Atoms, spec: StructureSpec, rng) -> list[Atoms]:
    out = []
    for k, eps in enumerate(np.linspace(-spec.max_volumetric_strain,
                                        spec.max_volumetric_strain, spec.n_volumetric)):
        atoms = base.copy()
        atoms.set_cell(base.cell.array * (1 + eps) ** (1 / 3), scale_atoms=True)
        out.append(_tag(atoms, "volumetric", f"volumetric-{k}"))
    for k in range(spec.n_shear):
        e = rng.uniform(-spec.max_shear_strain, spec.max_shear_strain, 6)
        strain = np.array([[e[0], e[5] / 2, e[4] / 2], [e[5] / 2, e[1], e[3] / 2],
                           [e[4] / 2, e[3] / 2, e[2]]])
        atoms = base.copy()
        atoms.set_cell(base.cell.array @ (np.eye(3) + strain), scale_atoms=True)
        out.append(_tag(atoms, "elastic", f"elastic-{k}"))
    return out


def _rattled_and_vacancies(base: Atoms, spec: StructureSpec, rng) -> list[Atoms]:
    out = []
    for k in range(spec.n_rattled):
        atoms = base.copy()
        atoms.positions += rng.normal(0.0, spec.rattle_std, atoms.positions.shape)
        out.append(_tag(atoms, "rattled", f"rattled-{k}"))
    for k in range(spec.n_vacancy):
        atoms = base.copy()
        del atoms[int(rng.integers(len(atoms)))]
        atoms.positions += rng.normal(0.0, spec.rattle_std / 2, atoms.positions.shape)
        out.append(_tag(atoms, "vacancy", f"vacancy-{k}"))
    return out


def _slabs(spec: StructureSpec, a: float, rng) -> list[Atoms]:
    out = []
    for miller in spec.slabs:
        conv = bulk(spec.element, spec.lattice, a=a, cubic=True)
        slab = surface(conv, miller, spec.slab_layers, vacuum=spec.slab_vacuum / 2)
        slab.pbc = True
        if len(slab) < 8:
            slab = slab.repeat((2, 2, 1))
        slab.positions += rng.normal(0.0, 0.02, slab.positions.shape)
        out.append(_tag(slab, "surface", "surface-" + "".join(map(str, miller))))
    return out


def _md_snapshots(base: Atoms, spec: StructureSpec, calculator, rng) -> list[Atoms]:
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta

    out = []
    starts = [("md", base)]
    if spec.md_with_vacancy:
        vac = base.copy()
        del vac[0]
        starts.append(("md_vacancy", vac))
    for label, start in starts:
        for temp in spec.md_temperatures:
            atoms = start.copy()
            atoms.calc = calculator
            thermalize_momenta(atoms, temperature_K=temp, rng=rng)
            dyn = Langevin(atoms, spec.md_timestep_fs * units.fs, temperature_K=temp,
                           friction=0.02, fixcm=False, rng=rng)
            for k in range(spec.md_snapshots):
                dyn.run(spec.md_steps_between)
                snap = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
                out.append(_tag(snap, label, f"{label}-{temp:g}K-{k}"))
    return out


def generate_structures(spec: StructureSpec, calculator=None) -> list[Atoms]:
    """Build the training structures of ``spec``.

    Parameters
    ----------
    spec : StructureSpec
    calculator : ase.calculators.calculator.Calculator, optional
        The reference calculator: relaxes the lattice constant (when ``spec.a`` is None)
        and drives the NVT snapshots.  Without it, NVT snapshots are skipped (with a log
        message) and the tabulated lattice constant is used.

    Returns
    -------
    list of ase.Atoms
        Unlabelled structures with ``info["config_type"]`` and ``info["structure_id"]``.
    """
    rng = np.random.default_rng(spec.seed)
    a = spec.a if spec.a is not None else lattice_constant(spec.element, spec.lattice,
                                                           calculator)
    unit = bulk(spec.element, spec.lattice, a=a, cubic=True)
    base = unit.repeat(spec.supercell)
    structures = [_tag(unit.copy(), "ground_state", "ground_state")]
    structures += _strained(unit, spec, rng)
    structures += _rattled_and_vacancies(base, spec, rng)
    structures += _slabs(spec, a, rng)
    if spec.md_snapshots and spec.md_temperatures:
        if calculator is None:
            log.info("no reference calculator given: NVT snapshots skipped")
        else:
            structures += _md_snapshots(base, spec, calculator, rng)
    log.info("generated %d structures for %s (%s, a = %.4f Å)", len(structures),
             spec.element, spec.lattice, a)
    return structures
