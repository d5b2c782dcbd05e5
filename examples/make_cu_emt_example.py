"""Regenerate the bundled Cu/EMT example data set (``mlip data info --example``).

Rattled and strained fcc copper labelled with ASE's EMT: small, exact, needs no DFT code.
Run from the project root: ``python examples/make_cu_emt_example.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from mlip_plugin.data import Configuration, write_extxyz

OUT = Path(__file__).resolve().parents[1] / "mlip_plugin" / "data" / "examples"


def main(seed: int = 7) -> Path:
    rng = np.random.default_rng(seed)
    configs = []
    for i in range(12):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
        strain = np.eye(3) + rng.uniform(-0.04, 0.04, (3, 3))
        atoms.set_cell(atoms.cell.array @ strain, scale_atoms=True)
        atoms.positions += rng.normal(0.0, 0.05 + 0.01 * i, atoms.positions.shape)
        atoms.calc = EMT()
        configs.append(Configuration(
            atoms=atoms.copy(), energy=atoms.get_potential_energy(),
            forces=atoms.get_forces(), stress=atoms.get_stress(),
            config_type="rattled_strained"))
    OUT.mkdir(parents=True, exist_ok=True)
    return write_extxyz(OUT / "Cu_EMT_example.extxyz", configs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7,
                        help="seed of the strains and displacements (default 7, the bundled set)")
    print(main(parser.parse_args().seed))
