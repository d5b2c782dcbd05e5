"""Point defects: hand computations, supercell convergence, lattice checks."""

from __future__ import annotations

import pytest
from ase.build import bulk
from ase.optimize import FIRE
from scipy.optimize import minimize_scalar

from mlip_plugin.errors import InputError
from mlip_plugin.properties import (
    DefectSettings,
    interstitial_formation,
    point_defect,
    vacancy_formation,
)


def _hand_vacancy(calc, n=3):
    """Vacancy formation energy computed directly: E(a) minimised on the primitive cell, the
    vacancy cell relaxed with FIRE (not BFGS) from the ideal positions."""
    def energy(a):
        atoms = bulk("Cu", "fcc", a=a)
        atoms.calc = calc
        return atoms.get_potential_energy()

    a0 = minimize_scalar(energy, bounds=(3.3, 3.9), method="bounded",
                         options={"xatol": 1e-7}).x
    perfect = bulk("Cu", "fcc", a=a0, cubic=True) * (n, n, n)
    perfect.calc = calc
    e_bulk = perfect.get_potential_energy()
    vacancy = perfect.copy()
    del vacancy[13]
    vacancy.calc = calc
    FIRE(vacancy, logfile=None).run(fmax=1e-5, steps=5000)
    n_atoms = len(perfect)
    return vacancy.get_potential_energy() - (n_atoms - 1) / n_atoms * e_bulk


def test_cu_emt_vacancy_matches_hand_computation(emt, copper):
    result = vacancy_formation(emt, copper)
    assert result.formation_energy == pytest.approx(_hand_vacancy(emt), abs=1e-3)
    assert result.formation_energy == pytest.approx(1.224, abs=2e-3)  # ECOSYSTEM.md
    assert result.converged and result.n_atoms == 107
    assert result.unrelaxed_formation_energy > result.formation_energy
    assert len(result.bulk) == 108 and result.structure.calc is None


@pytest.mark.slow
def test_cu_vacancy_is_converged_in_supercell_size(emt, copper):
    e3 = vacancy_formation(emt, copper, DefectSettings(supercell=3)).formation_energy
    e4 = vacancy_formation(emt, copper, DefectSettings(supercell=4)).formation_energy
    assert abs(e3 - e4) < 2e-3


def test_cu_interstitials_dumbbell_is_most_stable(emt, copper):
    energies = {site: interstitial_formation(emt, copper, site).formation_energy
                for site in ("octahedral", "tetrahedral", "dumbbell")}
    # the <100> split dumbbell is the stable self-interstitial of fcc Cu
    assert energies["dumbbell"] < energies["octahedral"] < energies["tetrahedral"]
    assert 2.0 < energies["dumbbell"] < 5.0


def test_si_sw_interstitial_sites_keep_their_symmetry(sw, silicon):
    settings = DefectSettings.fast()
    tet = interstitial_formation(sw, silicon, "tetrahedral", settings)
    hexa = interstitial_formation(sw, silicon, "hexagonal", settings)
    assert tet.n_atoms == hexa.n_atoms == 65
    # the added atom is the last one; symmetry keeps it on its site
    a = tet.lattice_constant
    assert tet.structure.positions[-1] == pytest.approx([a / 2] * 3, abs=1e-3)
    assert hexa.structure.positions[-1] == pytest.approx([5 * a / 8] * 3, abs=1e-3)
    assert tet.formation_energy < tet.unrelaxed_formation_energy


def test_vacancy_without_cell_relaxation_needs_no_stress(no_stress_calc):
    prim = bulk("Cu", "fcc", a=3.59)
    result = point_defect(no_stress_calc, prim, DefectSettings(supercell=2, relax_bulk=False))
    assert result.lattice_constant == pytest.approx(3.59)
    with pytest.raises(InputError, match="does not compute 'stress'"):
        point_defect(no_stress_calc, prim, DefectSettings(supercell=2))


@pytest.mark.parametrize("structure, site", [
    (bulk("Cu", "fcc", a=3.6), "hexagonal"),
    (bulk("Si", "diamond", a=5.43), "octahedral"),
    (bulk("Mg"), "tetrahedral"),
    (bulk("NaCl", "rocksalt", a=5.6), "octahedral"),
])
def test_wrong_lattice_for_interstitial(emt, structure, site):
    with pytest.raises(InputError, match=f"the {site} interstitial needs an elemental"):
        interstitial_formation(emt, structure, site)


def test_vacancy_is_not_an_interstitial_site(emt, copper):
    with pytest.raises(InputError, match="site='vacancy' is not an interstitial"):
        interstitial_formation(emt, copper, "vacancy")


@pytest.mark.parametrize("kwargs, match", [
    ({"defect": "antisite"}, "defect='antisite'"),
    ({"supercell": 0}, "supercell=0"),
    ({"supercell": 2.5}, "supercell=2.5"),
    ({"rattle": -0.1}, "rattle"),
])
def test_defect_settings_are_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        DefectSettings(**kwargs)
