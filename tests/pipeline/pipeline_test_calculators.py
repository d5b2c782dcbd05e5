"""Importable calculators for the pipeline tests (specs name them by class path)."""

from __future__ import annotations

from ase.calculators.emt import EMT


class CountingEMT(EMT):
    """EMT that counts its calculations in a class attribute."""

    calls = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        super().calculate(*args, **kwargs)


class FailOnVacancyEMT(EMT):
    """EMT that refuses any cell whose atom count is not a multiple of four."""

    def calculate(self, atoms=None, *args, **kwargs):
        if atoms is not None and len(atoms) % 4:
            raise RuntimeError(f"simulated SCF failure for {len(atoms)} atoms")
        super().calculate(atoms, *args, **kwargs)


class StrictEMT(EMT):
    """EMT whose constructor takes no unknown keyword."""

    def __init__(self, fixed_cutoff: bool = True):
        super().__init__(fixed_cutoff=fixed_cutoff)


class SlowLoggingEMT(EMT):
    """EMT that sleeps ``delay`` seconds per calculation and appends a line to ``log``."""

    def __init__(self, log: str = "", delay: float = 0.0):
        super().__init__()
        self.log, self.delay = log, delay

    def calculate(self, atoms=None, *args, **kwargs):
        import time

        time.sleep(self.delay)
        super().calculate(atoms, *args, **kwargs)
        if self.log:
            with open(self.log, "a") as fh:
                fh.write(f"{len(self.atoms)} {self.atoms.positions.sum():.12f}\n")


class FailAtCallEMT(EMT):
    """EMT that counts its calculations in a class attribute and raises on call number
    ``fail_at`` (0: never)."""

    calls = 0
    fail_at = 0

    def calculate(self, *args, **kwargs):
        type(self).calls += 1
        if type(self).calls == type(self).fail_at:
            raise RuntimeError("simulated SCF failure")
        super().calculate(*args, **kwargs)


class AlwaysFailEMT(EMT):
    """EMT whose every calculation fails."""

    def calculate(self, *args, **kwargs):
        raise RuntimeError("simulated SCF failure")


class PotentialFileEMT(EMT):
    """EMT that reads a potential file on construction (as ASE's EAM does)."""

    def __init__(self, potential: str = ""):
        with open(potential) as fh:
            fh.read()
        super().__init__()


class StartingMomentsEMT(EMT):
    """EMT that appends, per calculation, the atom count and the starting magnetic moments
    and charges of the structure it is given to ``log`` (one JSON line): what a
    spin-polarised calculator (GPAW, ASE's Vasp) would start from."""

    def __init__(self, log: str = ""):
        super().__init__()
        self.log = log

    def calculate(self, atoms=None, *args, **kwargs):
        import json

        super().calculate(atoms, *args, **kwargs)
        if self.log:
            with open(self.log, "a") as fh:
                fh.write(json.dumps({
                    "n": len(self.atoms),
                    "magmoms": self.atoms.get_initial_magnetic_moments().tolist(),
                    "charges": self.atoms.get_initial_charges().tolist()}) + "\n")


class NaNStressEMT(EMT):
    """EMT whose stress is NaN (a code that returns garbage instead of raising)."""

    def calculate(self, atoms=None, properties=("energy",), *args, **kwargs):
        super().calculate(atoms, properties, *args, **kwargs)
        if "stress" in self.results:
            self.results["stress"] = self.results["stress"] * float("nan")
