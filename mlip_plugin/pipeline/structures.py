"""Training-structure protocols in the spirit of Zuo et al. 2020.

For one element and lattice: the ground state, strained cells (volumetric and shear, −10 %
… +10 %), rattled supercells, vacancy supercells, low-index slabs, and NVT snapshots at
several temperatures run with the reference calculator itself (with and without a vacancy).
Every structure carries ``info["config_type"]`` and a stable ``info["structure_id"]``, and
the starting magnetic moments of :attr:`StructureSpec.magmoms` (Fe, Co and Ni by default),
which a spin-polarised reference calculator starts from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from ase import Atoms, units
from ase.build import bulk, surface
from ase.data import atomic_numbers, reference_states

from ..errors import InputError, MLIPError
from .reference import read_json_cache, write_json_atomic

__all__ = ["StructureSpec", "PRESETS", "PROTOCOL_VERSION", "structures_version",
           "spec_identity", "structures_key", "generate_structures", "calculator_stages",
           "structure_stage", "lattice_constant", "volumetric_strains",
           "StructureGenerationError"]

log = logging.getLogger(__name__)

#: Version of the structures :func:`generate_structures` makes from a :class:`StructureSpec`:
#: raised whenever the same spec gives other structures (2: volume strains without 0; 3:
#: starting magnetic moments, :attr:`StructureSpec.magmoms`, on every structure of Fe, Co
#: and Ni, the NVT snapshots and slabs included), so that a run folder's structures from
#: an older version are not reused.
PROTOCOL_VERSION = 3


def structures_version(spec: StructureSpec) -> int:
    """The :data:`PROTOCOL_VERSION` in which the structures of ``spec`` last changed: 3 for
    a spec that puts starting magnetic moments on its atoms (new in 3), else 2 (the same
    structures as version 2 made).  Run folders and AiiDA's cached structures of a spec
    are reused when they were made at this version or later, so that the new version
    regenerates (and reruns the reference's NVT stages of) only the specs it changed."""
    return PROTOCOL_VERSION if spec.starting_magmom() else 2


def spec_identity(spec: StructureSpec) -> dict:
    """What identifies the structures of ``spec``: its settings and
    :func:`structures_version`, without ``magmoms`` when it puts no moments on the atoms
    (so that a spec of a non-magnetic element is identified as before the setting existed)."""
    doc = spec.to_dict()
    if not spec.starting_magmom():
        doc.pop("magmoms")
    return {"structures": doc, "protocol_version": structures_version(spec)}


def structures_key(spec: StructureSpec, reference: Mapping) -> str:
    """sha256 (hex) of what identifies the structures ``spec`` generates with the reference
    calculator ``reference`` (a CalculatorSpec's dict; it runs the NVT stages): names the
    folder of their cached calculator stages."""
    doc = {**spec_identity(spec), "reference": dict(reference)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()

LATTICES = ("fcc", "bcc", "diamond", "sc")


class StructureGenerationError(MLIPError):
    """The reference calculator failed in a stage of the structure protocol (relaxing the
    lattice constant or an NVT run); ``stage`` names it, the original error is chained."""

    def __init__(self, message: str, stage: str = ""):
        super().__init__(message)
        self.stage = stage


@dataclass(frozen=True)
class StructureSpec:
    """What to generate.  Counts are per kind; temperatures in K; strains as fractions.

    ``preset`` names the defaults the other fields were taken from (``tiny`` for tests,
    ``demo`` for ``mlip demo``, ``standard`` for production); :meth:`from_preset` builds one.
    The ``n_volumetric`` volume strains (see :func:`volumetric_strains`) never include 0,
    which would repeat the ground state.

    ``magmoms``: the starting magnetic moment (μB) put on every atom, for a spin-polarised
    reference (GPAW, VASP's MAGMOM: both start from ``atoms.get_initial_magnetic_moments()``;
    EMT and other calculators ignore it).  ``"auto"`` (default): the element's moment in its
    ASE reference state, ``ase.data.reference_states[Z]["magmom_per_atom"]`` (the value
    :func:`ase.build.bulk` puts on its bulk cells): Fe 2.3, Co 1.2, Ni 0.6, whatever the
    lattice, and none for every other element.  These are the ferromagnetic elemental
    metals: an element without a starting moment converges to the non-magnetic solution
    (wrong reference data for Fe, Co, Ni), while a starting moment on a non-magnetic element
    costs only convergence time; antiferromagnets (Cr, Mn) need a moment pattern, not one
    value per atom, so they are left to the user.  ``"none"``: no moments.  A mapping
    element → μB (``{Fe: 3.0}``) gives the moment of the spec's element (none when it is
    not in the mapping).
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
    magmoms: str | Mapping = "auto"
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
        if self.max_volumetric_strain == 0 and self.n_volumetric > 0:
            raise InputError(
                f"max_volumetric_strain=0 with n_volumetric={self.n_volumetric} would repeat "
                "the ground state; give a strain > 0, or set n_volumetric: 0")
        for name in ("n_volumetric", "n_shear", "n_rattled", "n_vacancy", "md_snapshots"):
            if getattr(self, name) < 0:
                raise InputError(f"{name}={getattr(self, name)} must be >= 0")
        if not isinstance(self.md_with_vacancy, bool):  # "false" would count as true
            raise InputError(f"md_with_vacancy={self.md_with_vacancy!r} is not allowed: give "
                             "true or false")
        object.__setattr__(self, "magmoms", _magmoms_setting(self.magmoms))

    def starting_magmom(self) -> float:
        """The starting magnetic moment (μB) of each atom of the structures (0: none);
        see ``magmoms`` in the class docstring."""
        if self.magmoms == "none":
            return 0.0
        if self.magmoms == "auto":
            ref = reference_states[atomic_numbers[self.element]] or {}
            return float(ref.get("magmom_per_atom", 0.0))
        return float(self.magmoms.get(self.element, 0.0))

    @classmethod
    def from_preset(cls, preset: str = "tiny", **overrides) -> StructureSpec:
        """The preset's spec with ``overrides``, each checked and converted to its type
        (an InputError names ``structures.<key>``; a string of a number counts)."""
        from .config import structure_settings  # config imports this module

        if not isinstance(preset, str) or preset not in PRESETS:
            raise InputError(f"preset={preset!r} is not one of {sorted(PRESETS)}")
        unknown = set(overrides) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown structure settings {sorted(unknown)}; allowed: "
                             f"{sorted(cls.__dataclass_fields__)}")
        overrides = structure_settings(overrides)
        if "slabs" in overrides:
            overrides["slabs"] = tuple(tuple(int(i) for i in m) for m in overrides["slabs"])
        if "md_temperatures" in overrides:
            overrides["md_temperatures"] = tuple(float(t) for t in overrides["md_temperatures"])
        return replace(PRESETS[preset], **overrides)

    def to_dict(self) -> dict:
        return asdict(self)


def _magmoms_setting(value) -> str | dict:
    """``magmoms`` checked: "auto", "none", or a dict chemical symbol → finite float."""
    wanted = ("'auto' (Fe, Co, Ni get ASE's moments), 'none', or a mapping of chemical "
              "symbols to starting moments in μB such as {Fe: 3.0}")
    if isinstance(value, str) and value in ("auto", "none"):
        return value
    if not isinstance(value, Mapping):
        raise InputError(f"magmoms={value!r} is not allowed: give {wanted}")
    out = {}
    for symbol, moment in value.items():
        if symbol not in atomic_numbers:
            raise InputError(f"magmoms: {symbol!r} is not a chemical symbol; give {wanted}")
        try:
            moment = float(moment)
        except (TypeError, ValueError):
            moment = math.nan
        if isinstance(value[symbol], bool) or not math.isfinite(moment):
            raise InputError(f"magmoms: {symbol}={value[symbol]!r} is not a finite number "
                             f"(μB); give {wanted}")
        out[symbol] = moment
    return out


def _set_magmoms(atoms: Atoms, moment: float) -> Atoms:
    """``moment`` μB on every atom of ``atoms``, or no moments at all when it is 0 (ASE's
    :func:`~ase.build.bulk` puts its own on Fe, Co and Ni)."""
    if moment:
        atoms.set_initial_magnetic_moments(np.full(len(atoms), moment))
    else:
        atoms.arrays.pop("initial_magmoms", None)
    return atoms


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


def lattice_constant(element: str, lattice: str, calculator=None,
                     magmom: float | None = None) -> float:
    """Lattice constant in Å: relaxed with ``calculator`` (equation of state) if given,
    else ASE's tabulated value for the element.  ``magmom``: the starting magnetic moment
    (μB) of every atom of the cells relaxed (None: those :func:`ase.build.bulk` gives)."""
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
        if magmom is not None:
            _set_magmoms(atoms, magmom)
        atoms.calc = calculator
        volumes.append(atoms.get_volume())
        energies.append(atoms.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    return float(v0 ** (1 / 3))  # the cubic conventional cell has volume a³


def _tag(atoms: Atoms, config_type: str, sid: str) -> Atoms:
    atoms.info["config_type"] = config_type
    atoms.info["structure_id"] = sid
    return atoms


def volumetric_strains(n: int, max_strain: float) -> np.ndarray:
    """``n`` distinct, non-zero volume strains in [−max_strain, +max_strain], ascending.

    Zero strain is left out: it is the ground state, which the protocol already holds.
    An even ``n`` is evenly spaced over the whole range, ``np.linspace(−max, max, n)``
    (symmetric, so without 0); an odd ``n = 2k + 1`` puts k + 1 evenly spaced strains on
    the compressed side (−max/(k+1) … −max) and k on the expanded side (max/k … max), the
    extra one where the repulsive short distances are.  ``n = 1`` gives −max.
    """
    if n % 2 == 0:
        return np.linspace(-max_strain, max_strain, n)
    k = n // 2
    compressed = -max_strain * np.arange(k + 1, 0, -1) / (k + 1)
    expanded = max_strain * np.arange(1, k + 1) / max(k, 1)
    return np.concatenate([compressed, expanded])


def _strained(base: Atoms, spec: StructureSpec, rng) -> list[Atoms]:
    out = []
    strains = volumetric_strains(spec.n_volumetric, spec.max_volumetric_strain)
    for k, eps in enumerate(strains):
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


class _Stages:
    """Runs the stages of the protocol that call the reference calculator, each at most
    once: with a ``cache_dir``, a finished stage's output is kept there (one JSON file per
    stage, written atomically) and read back on the next call; an unreadable file is
    recomputed.  A calculator error becomes a :class:`StructureGenerationError`."""

    def __init__(self, spec: StructureSpec, calculator, cache_dir, documents=None,
                 until: str | None = None):
        self.spec, self.calculator = spec, calculator
        self.cache = None if cache_dir is None else Path(cache_dir)
        if self.cache is not None:
            self.cache.mkdir(parents=True, exist_ok=True)
        self.documents = dict(documents or {})
        self.until = until

    def run(self, stage: str, compute, check=None):
        """``compute()`` (JSON-serialisable) or the given or cached result of ``stage``;
        :class:`_StageReached` with the result once ``stage`` is ``until``."""
        doc = self._run(stage, compute, check)
        if stage == self.until:
            raise _StageReached(doc)
        return doc

    def _run(self, stage: str, compute, check):
        given = self.documents.get(stage)
        if given is not None:
            try:
                if check is not None:
                    check(given)
                return given
            except (KeyError, TypeError, ValueError, IndexError) as err:
                log.warning("structure stage %r: the result given is not usable (%s: %s); "
                            "computing it again", stage, type(err).__name__, err)
        path = None if self.cache is None else self.cache / f"{stage}.json"
        if path is not None:
            doc = read_json_cache(path, check)
            if doc is not None:
                log.info("structure stage %r: reusing %s", stage, path)
                return doc
        try:
            doc = compute()
        except MLIPError:
            raise
        except Exception as err:  # noqa: BLE001 - any calculator failure, named
            name = type(self.calculator).__name__
            kept = ("" if self.cache is None else
                    f" Finished stages are kept in {str(self.cache)!r} and a rerun resumes "
                    "after them.")
            skip = ("give structures.a (Å) to skip relaxing it" if stage == "lattice_constant"
                    else "set structures.md_snapshots: 0 to skip the NVT runs")
            raise StructureGenerationError(
                f"structure generation for {self.spec.element} ({self.spec.lattice}) failed "
                f"in stage {stage!r}: the reference calculator {name} raised "
                f"{type(err).__name__}: {err}. Check the calculator and its parameters "
                f"(section 'reference'), or {skip}.{kept}", stage=stage) from err
        if path is not None:
            write_json_atomic(path, doc)
        return doc


class _StageReached(Exception):  # noqa: N818 - a signal, not an error
    """Raised by :meth:`_Stages.run` when the stage asked for is done, with its result."""

    def __init__(self, doc: dict):
        super().__init__("stage reached")
        self.doc = doc


def calculator_stages(spec: StructureSpec) -> list[str]:
    """Names of the stages of ``spec``'s protocol that run the reference calculator, in
    order: ``lattice_constant`` (when ``spec.a`` is None), then one NVT run per start
    (``md``, and ``md_vacancy`` with ``md_with_vacancy``) and temperature (``md-300K``)."""
    names = ["lattice_constant"] if spec.a is None else []
    if spec.md_snapshots and spec.md_temperatures:
        labels = ["md", "md_vacancy"] if spec.md_with_vacancy else ["md"]
        names += [f"{label}-{temp:g}K" for label in labels for temp in spec.md_temperatures]
    return names


def structure_stage(spec: StructureSpec, calculator, stage: str,
                    documents: Mapping | None = None) -> dict:
    """The result (a JSON-ready document) of one calculator stage of ``spec``'s protocol
    (:func:`calculator_stages`), the earlier stages taken from ``documents`` (stage name →
    result) where given, so that an engine can store each stage as it finishes and hand
    them all to :func:`generate_structures` (``stage_documents``).

    Raises
    ------
    InputError
        ``stage`` is not a calculator stage of ``spec``.
    StructureGenerationError
        When the calculator fails in this stage or an earlier one not given.
    """
    if stage not in calculator_stages(spec):
        raise InputError(f"stage={stage!r} is not a calculator stage of this protocol "
                         f"({calculator_stages(spec)})")
    try:
        _generate(spec, calculator, None, documents, until=stage)
    except _StageReached as reached:
        return reached.doc
    raise InputError(f"stage {stage!r} was not reached")  # calculator_stages and _generate


def _atoms_doc(atoms: Atoms) -> dict:
    return {"numbers": atoms.numbers.tolist(), "positions": atoms.positions.tolist(),
            "cell": atoms.cell.array.tolist(), "info": dict(atoms.info)}


def _atoms_back(doc: dict) -> Atoms:
    atoms = Atoms(doc["numbers"], doc["positions"], cell=doc["cell"], pbc=True)
    atoms.info.update(doc["info"])
    return atoms


def _md_stage(start: Atoms, label: str, temp: float, spec: StructureSpec, calculator,
              rng) -> dict:
    """NVT snapshots from ``start`` at ``temp`` K and the generator's state afterwards."""
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import thermalize_momenta

    atoms = start.copy()
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K=temp, rng=rng)
    dyn = Langevin(atoms, spec.md_timestep_fs * units.fs, temperature_K=temp,
                   friction=0.02, fixcm=False, rng=rng)
    snaps = []
    for k in range(spec.md_snapshots):
        dyn.run(spec.md_steps_between)
        snap = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=True)
        snaps.append(_atoms_doc(_tag(snap, label, f"{label}-{temp:g}K-{k}")))
    return {"snapshots": snaps, "rng_state": rng.bit_generator.state}


def _check_md_stage(n_atoms: int, n_snapshots: int):
    """A check for a cached NVT stage: ``n_snapshots`` structures of ``n_atoms`` atoms and
    a generator state."""
    def check(doc):
        snaps = doc["snapshots"]
        if len(snaps) != n_snapshots or any(len(d["numbers"]) != n_atoms for d in snaps):
            raise ValueError(f"expected {n_snapshots} snapshots of {n_atoms} atoms")
        for d in snaps:
            _atoms_back(d)
        np.random.PCG64().state = doc["rng_state"]
    return check


def _md_snapshots(base: Atoms, spec: StructureSpec, stages: _Stages, rng) -> list[Atoms]:
    out = []
    starts = [("md", base)]
    if spec.md_with_vacancy:
        vac = base.copy()
        del vac[0]
        starts.append(("md_vacancy", vac))
    for label, start in starts:
        for temp in spec.md_temperatures:
            compute = partial(_md_stage, start, label, temp, spec, stages.calculator, rng)
            doc = stages.run(f"{label}-{temp:g}K", compute,
                             _check_md_stage(len(start), spec.md_snapshots))
            # a reused stage leaves the generator where computing it would have
            rng.bit_generator.state = doc["rng_state"]
            out += [_atoms_back(d) for d in doc["snapshots"]]
    return out


def generate_structures(spec: StructureSpec, calculator=None, *,
                        cache_dir: str | os.PathLike | None = None,
                        stage_documents: Mapping | None = None) -> list[Atoms]:
    """Build the training structures of ``spec``.

    Parameters
    ----------
    spec : StructureSpec
    calculator : ase.calculators.calculator.Calculator, optional
        The reference calculator: relaxes the lattice constant (when ``spec.a`` is None)
        and drives the NVT snapshots.  Without it, NVT snapshots are skipped (with a log
        message) and the tabulated lattice constant is used.
    cache_dir : path-like, optional
        Folder that keeps the output of every finished stage that runs the calculator
        (the lattice constant, each NVT run), so that a call after a failure resumes.  It
        must belong to this ``spec`` and calculator (the caller keys it).
    stage_documents : mapping, optional
        Results of calculator stages computed before (:func:`structure_stage`), by stage
        name; used instead of computing them (a result that does not fit is recomputed).

    Returns
    -------
    list of ase.Atoms
        Unlabelled structures with ``info["config_type"]`` and ``info["structure_id"]``,
        and the starting magnetic moments of :meth:`StructureSpec.starting_magmom` (also
        on the cells of the lattice constant relaxation and the starts of the NVT runs).

    Raises
    ------
    StructureGenerationError
        When the calculator fails; the finished stages are kept in ``cache_dir``.
    """
    return _generate(spec, calculator, cache_dir, stage_documents)


def _generate(spec: StructureSpec, calculator, cache_dir, documents,
              until: str | None = None) -> list[Atoms]:
    rng = np.random.default_rng(spec.seed)
    stages = _Stages(spec, calculator, cache_dir, documents, until)
    magmom = spec.starting_magmom()
    a = spec.a
    if a is None:
        a = stages.run("lattice_constant", lambda: {"a": lattice_constant(
            spec.element, spec.lattice, calculator, magmom)}, lambda d: float(d["a"]))["a"]
    unit = _set_magmoms(bulk(spec.element, spec.lattice, a=a, cubic=True), magmom)
    base = unit.repeat(spec.supercell)
    structures = [_tag(unit.copy(), "ground_state", "ground_state")]
    structures += _strained(unit, spec, rng)
    structures += _rattled_and_vacancies(base, spec, rng)
    structures += _slabs(spec, a, rng)
    if spec.md_snapshots and spec.md_temperatures:
        if calculator is None:
            log.info("no reference calculator given: NVT snapshots skipped")
        else:
            structures += _md_snapshots(base, spec, stages, rng)
    for atoms in structures:  # the slabs and NVT snapshots too
        _set_magmoms(atoms, magmom)
    log.info("generated %d structures for %s (%s, a = %.4f Å)", len(structures),
             spec.element, spec.lattice, a)
    return structures
