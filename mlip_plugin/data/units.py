"""Unit conversion into the package's units (ASE's): eV, Å, eV/Å, eV/Å³.

Readers convert on the way in; nothing downstream sees other units.  Every factor is taken
from :mod:`ase.units` so the whole stack agrees on the constants.
"""

from __future__ import annotations

from ase import units as _u

from ..errors import InputError

__all__ = [
    "ENERGY_UNITS",
    "LENGTH_UNITS",
    "FORCE_UNITS",
    "STRESS_UNITS",
    "KCAL_PER_MOL",
    "KBAR",
    "conversion_factor",
]

KCAL_PER_MOL = _u.kcal / _u.mol  #: one kcal/mol in eV
KBAR = 0.1 * _u.GPa  #: one kbar in eV/Å³

ENERGY_UNITS = {
    "eV": 1.0,
    "meV": 1e-3,
    "kcal/mol": KCAL_PER_MOL,
    "kJ/mol": _u.kJ / _u.mol,
    "Hartree": _u.Hartree,
    "Ha": _u.Hartree,
    "Ry": _u.Ry,
}
LENGTH_UNITS = {"Ang": 1.0, "Å": 1.0, "A": 1.0, "Angstrom": 1.0, "Bohr": _u.Bohr, "nm": 10.0}
FORCE_UNITS = {
    "eV/Ang": 1.0,
    "eV/Å": 1.0,
    "eV/A": 1.0,
    "kcal/mol/Ang": KCAL_PER_MOL,
    "kcal/mol/A": KCAL_PER_MOL,
    "kcal/mol/Å": KCAL_PER_MOL,
    "Hartree/Bohr": _u.Hartree / _u.Bohr,
    "Ha/Bohr": _u.Hartree / _u.Bohr,
    "Ry/Bohr": _u.Ry / _u.Bohr,
}
STRESS_UNITS = {"eV/Ang^3": 1.0, "eV/Å³": 1.0, "eV/A^3": 1.0, "GPa": _u.GPa, "kbar": KBAR}

_TABLES = {
    "energy": ENERGY_UNITS,
    "length": LENGTH_UNITS,
    "forces": FORCE_UNITS,
    "stress": STRESS_UNITS,
}


def conversion_factor(quantity: str, unit: str) -> float:
    """Factor that converts a value of ``quantity`` given in ``unit`` into ASE units.

    Parameters
    ----------
    quantity : {"energy", "length", "forces", "stress"}
    unit : str
        For example ``"kcal/mol"`` or ``"Hartree/Bohr"``; the tables in this module list
        every accepted spelling.

    Raises
    ------
    InputError
        If the quantity or the unit is unknown.
    """
    table = _TABLES.get(quantity)
    if table is None:
        raise InputError(
            f"unknown quantity {quantity!r} for a unit conversion; "
            f"allowed: {sorted(_TABLES)}"
        )
    try:
        return float(table[unit])
    except KeyError:
        raise InputError(
            f"unknown {quantity} unit {unit!r}; allowed: {sorted(table)}. "
            "Convert the data or name one of these units."
        ) from None
