"""Reading and writing labelled configurations.

Formats: extended XYZ (any label key names), ASE databases (``.db``), sGDML-style ``.npz``
(``R``, ``z``, ``E``, ``F``; kcal/mol converted to eV) and the mlearn JSON format of Zuo et
al. 2020 (pymatgen ``Structure`` dicts, parsed without pymatgen).  After reading, everything
is in eV, Å, eV/Å, eV/Å³ (see :mod:`mlip_plugin.data.units`).

Label keys are explicit (``energy_key=...``); when a key is not given it is detected only
if exactly one of the usual spellings is present in the file, otherwise an
:class:`~mlip_plugin.errors.InputError` asks for it.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from ase.io.formats import UnknownFileTypeError

from ..errors import InputError
from .configuration import Configuration, Weights, voigt_from_matrix
from .units import conversion_factor

log = logging.getLogger(__name__)

__all__ = [
    "read_configs",
    "write_extxyz",
    "ENERGY_KEYS",
    "FORCES_KEYS",
    "STRESS_KEYS",
    "VIRIAL_KEYS",
    "FORMATS",
]

ENERGY_KEYS = ("energy", "dft_energy", "REF_energy", "total_energy")
FORCES_KEYS = ("forces", "force", "dft_force", "dft_forces", "REF_forces")
STRESS_KEYS = ("stress", "dft_stress", "REF_stress")
VIRIAL_KEYS = ("virial", "dft_virial", "REF_virial")
FORMATS = ("extxyz", "db", "npz", "mlearn")
_LABEL_NAMES = ("energy", "forces", "stress", "virial")
_WEIGHT_KEYS = ("energy_weight", "forces_weight", "virial_weight")
#: Every spelling of a label: never kept in (nor written from) a configuration's ``info``.
_ALL_LABEL_KEYS = frozenset(ENERGY_KEYS + FORCES_KEYS + STRESS_KEYS + VIRIAL_KEYS)
#: Fields :func:`write_extxyz` writes itself; ``info`` entries of these names are left out.
_WRITTEN_KEYS = frozenset({"Lattice", "Properties", "pbc", "config_type", *_WEIGHT_KEYS,
                           *_ALL_LABEL_KEYS})
#: What the file or its parser raises when it cannot be read as the format asked for.
_READ_ERRORS = (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
                EOFError, sqlite3.DatabaseError, zipfile.BadZipFile, zlib.error,
                UnknownFileTypeError)


def read_configs(
    path: str | os.PathLike,
    *,
    format: str | None = None,
    energy_key: str | None = None,
    forces_key: str | None = None,
    stress_key: str | None = None,
    virial_key: str | None = None,
    config_type_key: str = "config_type",
    units: Mapping[str, str] | None = None,
    require: Sequence[str] = ("energy",),
    weights: Weights | None = None,
    validate: bool = True,
    option_names: Mapping[str, str] | None = None,
) -> list[Configuration]:
    """Read labelled configurations from ``path``.

    Parameters
    ----------
    path : path-like
        File to read.
    format : {"extxyz", "db", "npz", "mlearn"}, optional
        Taken from the suffix when not given (``.xyz``/``.extxyz``, ``.db``, ``.npz``,
        ``.json``).
    energy_key, forces_key, stress_key, virial_key : str, optional
        Names of the labels in the file (extxyz and db).  Detected when unambiguous.
        Give either a stress (eV/Å³, ASE sign) or a virial (eV) key, not both.
    config_type_key : str
        Per-configuration key holding the configuration type.
    units : mapping, optional
        Units of the file's values, with the keys ``"energy"``, ``"length"`` (positions and
        cell), ``"forces"`` and ``"stress"``, e.g. ``{"energy": "Hartree", "length":
        "Bohr"}``; :mod:`mlip_plugin.data.units` lists the spellings.  Energy and length
        default to eV and Å (for ``.npz``, to the file's ``e_unit`` and ``r_unit`` fields);
        forces default to energy/length and stress to energy/length³ of those units (for
        mlearn JSON, stress defaults to the format's kbar); a virial is an energy.
    require : sequence of {"energy", "forces", "stress"}
        Labels every configuration must carry; a configuration without one is an error.
    weights : Weights, optional
        Weights to give every configuration.  By default a configuration of an extxyz or
        db file takes its ``energy_weight``, ``forces_weight`` and ``virial_weight`` entries
        (as :func:`write_extxyz` writes them); one it lacks is that of ``Weights()``.
    validate : bool
        Check every configuration (:meth:`Configuration.validate`).
    option_names : mapping, optional
        How the caller's users name these parameters, for the error messages: e.g.
        ``{"format": "--format", "energy_key": "--energy-key"}`` for a command line, or
        ``{"format": "data.format", ...}`` for a configuration file.  A parameter not in it
        is named by its keyword here; ``require`` is suggested only when it is in it (or
        when ``option_names`` is None).

    Returns
    -------
    list of Configuration

    Raises
    ------
    InputError
        Unreadable or missing file, unknown format or unit, ambiguous or absent label keys,
        missing required labels, NaN/inf, wrong shapes, overlapping atoms, zero-volume cells.
    """
    path = Path(path)
    name = _Names(option_names)
    if path.is_dir():
        raise InputError(f"cannot read {str(path)!r}: it is a folder; give a data file "
                         f"(formats: {', '.join(FORMATS)})")
    if not path.is_file():
        raise InputError(f"cannot read {str(path)!r}: no such file")
    fmt = format or _format_from_suffix(path, name)
    if fmt not in FORMATS:
        raise InputError(f"{name('format')}={fmt!r} is not a known format (for "
                         f"{str(path)!r}); allowed: {FORMATS}")
    keys = {"energy": energy_key, "forces": forces_key, "stress": stress_key,
            "virial": virial_key}
    log.debug("reading %s as %s", path, fmt)
    try:
        if fmt == "npz":
            configs = _read_npz(path, units)
        elif fmt == "mlearn":
            configs = _read_mlearn(path, units)
        else:
            images = _read_ase_images(path, fmt)
            configs = _configs_from_images(images, path, keys, config_type_key, units,
                                           name)
    except InputError:
        raise
    except _READ_ERRORS as err:
        raise InputError(
            f"cannot read {str(path)!r} as {fmt}: {type(err).__name__}: {err}"
        ) from err
    if not configs:
        raise InputError(f"{str(path)!r} contains no configurations")
    for i, c in enumerate(configs):
        for label in require:
            if getattr(c, label, None) is None:
                relax = (f" or relax {name('require')}={tuple(require)}"
                         if name.offers("require") else "")
                raise InputError(
                    f"{path}, configuration {i}: missing required label {label!r}; "
                    f"name its key with {name(label + '_key')}{relax}"
                )
        if weights is not None:
            c.weights = weights
        if validate:
            c.validate(str(path), i)
    return configs


class _Names:
    """How error messages name a parameter of :func:`read_configs` (see ``option_names``)."""

    def __init__(self, option_names: Mapping[str, str] | None):
        self.names = option_names

    def __call__(self, param: str) -> str:
        return param if self.names is None else self.names.get(param, param)

    def offers(self, param: str) -> bool:
        return self.names is None or param in self.names


def _format_from_suffix(path: Path, name: _Names) -> str:
    suffix = path.suffix.lower()
    table = {".xyz": "extxyz", ".extxyz": "extxyz", ".db": "db", ".npz": "npz",
             ".json": "mlearn"}
    if suffix not in table:
        raise InputError(
            f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}; "
            f"give it with {name('format')}, one of {FORMATS}"
        )
    return table[suffix]


def _read_ase_images(path: Path, fmt: str) -> list[Atoms]:
    if fmt == "db":
        import ase.db

        if path.stat().st_size == 0:  # ase.db.connect would write an empty database into it
            return []
        images = []
        with ase.db.connect(str(path)) as db:
            for row in db.select():
                atoms = row.toatoms(add_additional_information=False)
                atoms.info.update(row.key_value_pairs)
                atoms.info.update({k: v for k, v in row.data.items()})
                images.append(atoms)
        return images
    import ase.io

    try:
        return list(ase.io.read(str(path), index=":", format="extxyz"))
    except KeyError as err:  # ASE's symbol lookup
        _check_symbol(err.args[0] if err.args else None, path)
        raise


def _check_symbol(symbol, path: Path) -> None:
    """Raise a named InputError if ``symbol`` (a str) is not a chemical element."""
    if isinstance(symbol, str) and symbol not in atomic_numbers:
        raise InputError(
            f"cannot read {str(path)!r}: {symbol!r} is not a chemical element symbol; the "
            f"species must be element symbols such as 'Si' or 'Cu': replace {symbol!r} by "
            "its element in the file"
        )


def _labels_of(atoms: Atoms) -> dict:
    """Every per-configuration and per-atom value an image carries, by key."""
    out = dict(atoms.info)
    out.update({k: v for k, v in atoms.arrays.items() if k not in ("numbers", "positions")})
    if atoms.calc is not None:
        out.update(getattr(atoms.calc, "results", {}))
    return out


def _resolve_keys(all_keys: set, given: dict, path: Path, name: _Names) -> dict:
    candidates = {"energy": ENERGY_KEYS, "forces": FORCES_KEYS, "stress": STRESS_KEYS,
                  "virial": VIRIAL_KEYS}
    chosen = {}
    for label in _LABEL_NAMES:
        key = given[label]
        if key is not None:
            if key not in all_keys:
                raise InputError(
                    f"{name(label + '_key')}={key!r} is not in {str(path)!r}; keys present: "
                    f"{sorted(all_keys)}"
                )
            chosen[label] = key
            continue
        found = [k for k in candidates[label] if k in all_keys]
        if len(found) > 1:
            raise InputError(
                f"{str(path)!r} has several {label} labels {found}; say which with "
                f"{name(label + '_key')}"
            )
        chosen[label] = found[0] if found else None
    if chosen["stress"] and chosen["virial"]:
        named = given["stress"] is not None, given["virial"] is not None
        if named == (True, False):
            chosen["virial"] = None
        elif named == (False, True):
            chosen["stress"] = None
        else:
            raise InputError(
                f"{str(path)!r} has both a stress ({chosen['stress']!r}) and a virial "
                f"({chosen['virial']!r}) label; give only one of {name('stress_key')} or "
                f"{name('virial_key')}"
            )
    return chosen


def _unit_factors(units: Mapping[str, str] | None,
                  defaults: Mapping[str, str] | None = None) -> dict[str, float]:
    """Factors into ASE units of energy, length, forces and stress.

    ``units`` (the caller's) overrides ``defaults`` (the format's); energy and length default
    to eV and Å, forces to energy/length and stress to energy/length³ of the units named.
    """
    if units is not None and not isinstance(units, Mapping):
        raise InputError(
            f"units={units!r} is not a mapping; give one such as "
            "{'energy': 'kcal/mol', 'length': 'Ang'}"
        )
    unknown = set(units or {}) - {"energy", "length", "forces", "stress"}
    if unknown:
        raise InputError(
            f"units has unknown entries {sorted(unknown)}; allowed: energy, length, forces, "
            "stress"
        )
    named = {**(defaults or {}), **(units or {})}
    f = {q: conversion_factor(q, u) for q, u in named.items()}
    f.setdefault("energy", 1.0)
    f.setdefault("length", 1.0)
    f.setdefault("forces", f["energy"] / f["length"])
    f.setdefault("stress", f["energy"] / f["length"] ** 3)
    return f


def _configs_from_images(images, path, given_keys, config_type_key, units, name):
    factors = _unit_factors(units)
    labelled = [_labels_of(a) for a in images]
    all_keys = set().union(*(lab.keys() for lab in labelled)) if labelled else set()
    keys = _resolve_keys(all_keys, given_keys, path, name)
    used = {k for k in keys.values() if k} | {config_type_key, *_WEIGHT_KEYS, *_ALL_LABEL_KEYS}
    configs = []
    for i, (atoms, lab) in enumerate(zip(images, labelled)):
        clean = Atoms(numbers=atoms.numbers, positions=atoms.positions * factors["length"],
                      cell=atoms.cell.array * factors["length"], pbc=atoms.pbc)
        energy = _get(lab, keys["energy"])
        forces = _get(lab, keys["forces"])
        stress = _get(lab, keys["stress"])
        virial = _get(lab, keys["virial"])
        if energy is not None:
            energy = float(np.asarray(energy).reshape(-1)[0]) if np.size(energy) == 1 else (
                _bad_shape(path, i, "energy", np.shape(energy)))
            energy *= factors["energy"]
        if forces is not None:
            forces = np.asarray(forces, dtype=float) * factors["forces"]
        if stress is not None:
            stress = _as_voigt(stress, path, i, "stress") * factors["stress"]
        if virial is not None:
            volume = abs(np.linalg.det(clean.cell.array))
            if volume < 1e-8:
                raise InputError(
                    f"{path}, configuration {i}: a virial needs a cell with non-zero volume"
                )
            stress = -_as_voigt(virial, path, i, "virial") * factors["energy"] / volume
        w = _weights_of(lab, path, i)
        info = {k: v for k, v in atoms.info.items() if k not in used and _is_plain(v)}
        configs.append(Configuration(
            atoms=clean, energy=energy, forces=forces, stress=stress,
            config_type=str(lab.get(config_type_key, "default")), weights=w, info=info))
    return configs


def _weights_of(labels: dict, path, i) -> Weights:
    """The configuration's ``*_weight`` entries; those it lacks keep the defaults."""
    given = {k.removesuffix("_weight"): labels[k] for k in _WEIGHT_KEYS if k in labels}
    try:
        return Weights(**{k: float(v) for k, v in given.items()})
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}, configuration {i}: {err}") from err


def _get(labels: dict, key):
    return None if key is None else labels.get(key)


def _bad_shape(path, i, name, shape):
    raise InputError(f"{path}, configuration {i}: {name} has shape {shape}, expected a scalar")


def _as_voigt(value, path, i, name) -> np.ndarray:
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.size == 9:
        return voigt_from_matrix(arr)
    if arr.size == 6:
        return arr
    raise InputError(
        f"{path}, configuration {i}: {name} has {arr.size} components, expected 6 (Voigt) "
        "or 9 (3×3)"
    )


def _is_plain(value) -> bool:
    """Scalars, strings and short 1-D numeric arrays: metadata worth keeping in ``info``."""
    if isinstance(value, np.ndarray):  # an empty one would be written as "" (ASE then
        # reads the next field into it): not kept
        return value.ndim == 1 and 0 < value.size <= 64 and value.dtype.kind in "if"
    return isinstance(value, (str, int, float, bool, np.integer, np.floating))


def _read_npz(path: Path, units) -> list[Configuration]:
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head and head != b"PK\x03\x04":  # not a zip archive (np.load would try a pickle)
        raise InputError(
            f"cannot read {str(path)!r} as npz: it is not an npz archive (a zip of arrays, "
            "as sGDML's R, z, E, F); check the file, or give its format"
        )
    with np.load(path, allow_pickle=False) as d:
        missing = [k for k in ("R", "z") if k not in d.files]
        if missing:
            raise InputError(
                f"{str(path)!r} is not an sGDML-style npz: missing arrays {missing} "
                f"(has {d.files})"
            )
        f = _unit_factors(units, {q: str(d[k]) for q, k in (("energy", "e_unit"),
                                                             ("length", "r_unit"))
                                  if k in d.files})
        unnamed = [q for q, k in (("energy", "e_unit"), ("length", "r_unit"))
                   if k not in d.files and q not in (units or {})]
        if unnamed and ("E" in d.files or "F" in d.files):
            log.warning("%s names no unit of %s (sGDML's e_unit / r_unit); reading them as "
                        "eV and Å. sGDML data are usually kcal/mol: pass units={'energy': "
                        "'kcal/mol'} if so", path, " and ".join(unnamed))
        R = np.asarray(d["R"], dtype=float) * f["length"]
        z = _atomic_numbers(d["z"], path)
        n_frames = R.shape[0]
        if R.ndim != 3 or R.shape[1:] != (len(z), 3):
            raise InputError(f"{str(path)!r}: R has shape {R.shape}, expected (n, {len(z)}, 3)")
        E = np.asarray(d["E"], dtype=float).reshape(n_frames, -1)[:, 0] * f["energy"] if (
            "E" in d.files) else None
        F = np.asarray(d["F"], dtype=float).reshape(R.shape) * f["forces"] if (
            "F" in d.files) else None
        # sGDML keeps the lattice vectors as the COLUMNS of `lattice` (its pbc_diff, and
        # its extxyz writer, which writes lattice.T); ASE's cell has them as rows
        lattice = np.asarray(d["lattice"], dtype=float).T * f["length"] if (
            "lattice" in d.files) else None
        name = str(d["name"]) if "name" in d.files else path.stem
        old = np.asarray(d["old_indices"]) if "old_indices" in d.files else None
    configs = []
    for i in range(n_frames):
        atoms = Atoms(numbers=z, positions=R[i])
        if lattice is not None:
            atoms.cell = lattice
            atoms.pbc = True
        info = {"source": name}
        if old is not None:
            info["frame_index"] = int(old[i])
        configs.append(Configuration(
            atoms=atoms, energy=None if E is None else E[i],
            forces=None if F is None else F[i], config_type=name, info=info))
    return configs


def _atomic_numbers(values, path: Path) -> np.ndarray:
    """The npz array ``z`` as atomic numbers; InputError unless each is a whole number of
    an element (1 … 118)."""
    z = np.asarray(values)
    as_int = z.astype(int) if z.dtype.kind in "iuf" and np.all(np.isfinite(z)) else None
    if as_int is None or z.ndim != 1 or np.any(as_int != z) or np.any(
            (as_int < 1) | (as_int >= len(chemical_symbols))):
        raise InputError(
            f"cannot read {str(path)!r}: its array z holds {z.tolist()!r}, not atomic numbers "
            f"(one whole number from 1 to {len(chemical_symbols) - 1} per atom); fix z in "
            "the file")
    return as_int


def _read_mlearn(path: Path, units) -> list[Configuration]:
    with open(path) as fh:
        try:
            docs = json.load(fh)
        except json.JSONDecodeError as err:
            raise InputError(f"{str(path)!r} is not valid JSON: {err}") from err
    if isinstance(docs, dict):
        docs = [docs]
    if not isinstance(docs, list) or not all(isinstance(d, dict) and "structure" in d
                                              for d in docs):
        raise InputError(
            f"{str(path)!r} is not in the mlearn format (a list of objects with "
            "'structure' and 'outputs')"
        )
    factors = _unit_factors(units, {"stress": "kbar"})
    return [_mlearn_config(doc, factors, path) for doc in docs]


def _mlearn_config(doc: dict, factors: dict, path: Path) -> Configuration:
    """One mlearn entry.  ``virial_stress`` is in kbar (unless ``units`` names another stress
    unit), pressure-positive, ordered ``xx yy zz xy xz yz`` (the order used by the Zuo et al.
    data in this project)."""
    s = doc["structure"]
    cell = np.asarray(s["lattice"]["matrix"], dtype=float)
    symbols, positions = [], []
    for site in s["sites"]:
        species = site["species"]
        if len(species) != 1:
            raise InputError("mlearn structure has a partially occupied site; not supported")
        _check_symbol(species[0]["element"], path)
        symbols.append(species[0]["element"])
        positions.append(site["xyz"] if "xyz" in site else np.dot(site["abc"], cell))
    length = factors["length"]
    atoms = Atoms(symbols=symbols, positions=np.reshape(positions, (-1, 3)) * length,
                  cell=cell * length, pbc=True)
    out = doc.get("outputs") or {}
    if not isinstance(out, dict):
        raise InputError(f"cannot read {str(path)!r}: an entry's 'outputs' is a "
                         f"{type(out).__name__}, not an object with 'energy', 'forces' and "
                         "'virial_stress' (the mlearn format)")
    energy = out.get("energy")
    forces = out.get("forces")
    stress = None
    if out.get("virial_stress") is not None:
        xx, yy, zz, xy, xz, yz = np.asarray(out["virial_stress"], dtype=float)
        stress = -factors["stress"] * np.array([xx, yy, zz, yz, xz, xy])
    return Configuration(
        atoms=atoms,
        energy=None if energy is None else float(energy) * factors["energy"],
        forces=None if forces is None else np.asarray(forces, float) * factors["forces"],
        stress=stress,
        config_type=str(doc.get("tag", doc.get("group", "default"))),
    )


def write_extxyz(path: str | os.PathLike, configs: Sequence[Configuration]) -> Path:
    """Write configurations to extended XYZ with full float precision.

    Labels are written under ``energy``, ``forces`` and ``stress`` (3×3, eV/Å³), together with
    ``config_type``, the weights and plain ``info`` entries, so :func:`read_configs` gives
    back identical arrays and values: a string that ASE's parser would read as a number or
    a boolean (``"007"``, ``"T"``) is written in ASE's ``_JSON`` form, so it comes back as the
    same string.  ``info`` entries named like a label (``REF_energy``, ``dft_forces``, ...) or
    like a field written here are left out.
    """
    path = Path(path)
    with open(path, "w", encoding="utf-8") as fh:
        for c in configs:
            fh.write(_extxyz_frame(c))
    return path


def _fmt(x) -> str:
    return repr(float(x))


def _extxyz_frame(c: Configuration) -> str:
    a = c.atoms
    props = "species:S:1:pos:R:3" + (":forces:R:3" if c.forces is not None else "")
    fields = []
    if any(a.pbc) or a.cell.array.any():  # a molecule's partial cell too
        fields.append('Lattice="' + " ".join(_fmt(x) for x in a.cell.array.reshape(-1)) + '"')
    fields.append(f"Properties={props}")
    if c.energy is not None:
        fields.append(f"energy={_fmt(c.energy)}")
    if c.stress is not None:
        from .configuration import matrix_from_voigt

        m = matrix_from_voigt(c.stress).reshape(-1)
        fields.append('stress="' + " ".join(_fmt(x) for x in m) + '"')
    fields.append(f"config_type={_quote(str(c.config_type))}")
    for key, val in zip(_WEIGHT_KEYS, (c.weights.energy, c.weights.forces, c.weights.virial)):
        fields.append(f"{key}={_fmt(val)}")
    for key, val in c.info.items():
        if _is_plain(val) and key not in _WRITTEN_KEYS:
            fields.append(f"{key}={_info_value(val)}")
    fields.append('pbc="' + " ".join("T" if p else "F" for p in a.pbc) + '"')
    lines = [str(len(a)), " ".join(fields)]
    for k, (sym, pos) in enumerate(zip(a.get_chemical_symbols(), a.positions)):
        row = [sym, *(_fmt(x) for x in pos)]
        if c.forces is not None:
            row += [_fmt(x) for x in c.forces[k]]
        lines.append(" ".join(row))
    return "\n".join(lines) + "\n"


def _info_value(value) -> str:
    """One plain ``info`` value as extxyz text that ASE's parser reads back unchanged."""
    if isinstance(value, (bool, np.bool_)):
        return "T" if value else "F"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _fmt(value)
    if isinstance(value, np.ndarray):
        return '"' + " ".join(_fmt(x) if value.dtype.kind == "f" else str(int(x))
                              for x in value) + '"'
    return _quote(str(value))


def _quote(text: str) -> str:
    """``text`` quoted for an extxyz comment line so that ASE reads back the same string.

    ASE turns values that look like numbers or booleans (quoted or not) into those types;
    such strings, and strings with line breaks, are written as ``"_JSON \\"...\\""``, which
    ASE decodes as JSON.
    """
    from ase.io.extxyz import key_val_str_to_dict

    quoted = _escape(text)
    if "\n" not in text and "\r" not in text:
        try:
            back = key_val_str_to_dict(f"k={quoted}").get("k")
        except ValueError:  # e.g. text that starts with "_JSON " but is no JSON
            back = None
        if isinstance(back, str) and back == text:
            return quoted
    return _escape("_JSON " + json.dumps(text))


def _escape(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
