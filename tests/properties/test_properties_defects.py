"""Point defects: hand computations, supercell convergence, lattice checks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
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


def _neighbour_shells(atoms, index, n):
    """Distances (Å) from atom ``index`` to its ``n`` nearest neighbours, sorted."""
    others = [i for i in range(len(atoms)) if i != index]
    return np.sort(atoms.get_distances(index, others, mic=True))[:n]


def test_cu_octahedral_and_dumbbell_keep_their_sites(emt, copper):
    """In the 2×2×2 cell the free ⟨100⟩ dumbbell falls onto the octahedral site (the two
    rows were equal); with the symmetry kept each site reports its own configuration."""
    octa = interstitial_formation(emt, copper, "octahedral", DefectSettings.fast())
    dumb = interstitial_formation(emt, copper, "dumbbell", DefectSettings.fast())
    assert octa.converged and dumb.converged
    assert abs(octa.formation_energy - dumb.formation_energy) > 0.05
    a = octa.lattice_constant
    # the added atom stays on (½,½,½) a, its six neighbours pushed out by the same amount
    assert octa.structure.positions[-1] == pytest.approx([a / 2] * 3, abs=1e-6)
    shell = _neighbour_shells(octa.structure, len(octa.structure) - 1, 7)
    assert shell[:6] == pytest.approx([shell[0]] * 6, abs=1e-6)
    assert shell[0] > a / 2 + 0.3 and shell[6] > shell[0] + 0.1
    # the dumbbell atoms (0 and the last) stay split along z about the lattice site
    pair = dumb.structure[[0, len(dumb.structure) - 1]]
    pair.wrap(center=(0.0, 0.0, 0.25))  # fractional x, y in [-½, ½), z in [-¼, ¾)
    assert pair.positions[:, :2] == pytest.approx(np.zeros((2, 2)), abs=1e-6)
    assert pair.positions[0, 2] == pytest.approx(-pair.positions[1, 2], abs=1e-6)


def test_cu_free_dumbbell_falls_onto_the_octahedral_site_in_a_small_cell(emt, copper):
    """keep_symmetry=False restores the free, rattled relaxation: the ⟨100⟩ dumbbell is a
    saddle of EMT Cu in the 2×2×2 cell and ends at the octahedral configuration's energy."""
    octa = interstitial_formation(emt, copper, "octahedral", DefectSettings.fast())
    free = interstitial_formation(emt, copper, "dumbbell",
                                  replace(DefectSettings.fast(), keep_symmetry=False))
    assert free.settings.displacement == 0.02
    assert free.formation_energy == pytest.approx(octa.formation_energy, abs=1e-4)


def test_free_relaxation_rattles_the_atoms_around_the_interstitial(emt, copper):
    """The random start of a free relaxation displaces the interstitial and its neighbours
    (it displaced the neighbours of the lattice site at the origin, leaving the added atom
    on its site). fmax is large so that the relaxation stops at the rattled start."""
    settings = DefectSettings(defect="octahedral", supercell=2, keep_symmetry=False,
                              fmax=50.0)
    result = point_defect(emt, copper, settings)
    a = result.lattice_constant
    ideal = result.bulk.copy()
    ideal.append("Cu")
    ideal.positions[-1] = [a / 2] * 3
    moved = np.linalg.norm(result.structure.positions - ideal.positions, axis=1) > 1e-9
    near = ideal.get_distances(len(ideal) - 1, range(len(ideal)), mic=True) < 1.2 * a / 2**0.5
    assert near.sum() == 7  # the added atom and its six octahedral neighbours
    assert np.array_equal(moved, near)


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
    # unrelaxed formation energies by hand: E(N + 1 atoms) - (N + 1) E_bulk / N, whose
    # chemical potential (≈ -4.34 eV/atom for SW) tests the reference term as well
    perfect = bulk("Si", "diamond", a=a, cubic=True) * (2, 2, 2)
    perfect.calc = sw
    mu = perfect.get_potential_energy() / len(perfect)
    for result, site in ((tet, [0.5] * 3), (hexa, [0.625] * 3)):
        defect = perfect.copy()
        defect.append("Si")
        defect.positions[-1] = np.array(site) * a
        defect.calc = sw
        hand = defect.get_potential_energy() - len(defect) * mu
        assert result.unrelaxed_formation_energy == pytest.approx(hand, abs=1e-6)


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


def test_vacancy_of_a_compound_is_refused(emt):
    """Which atom goes would decide the answer (the first of the list), and a compound's
    vacancy needs the removed species' chemical potential, which point_defect does not
    take: refused, in either atom order."""
    cu3au = bulk("Cu", "fcc", a=3.75, cubic=True)
    cu3au.symbols[0] = "Au"
    for atoms in (cu3au, cu3au[[1, 2, 3, 0]]):
        with pytest.raises(InputError, match=r"vacancy formation energy of a compound "
                                             r"\(AuCu3, species \['Au', 'Cu'\]\) needs"):
            vacancy_formation(emt, atoms)


def test_vacancy_is_not_an_interstitial_site(emt, copper):
    with pytest.raises(InputError, match="site='vacancy' is not an interstitial"):
        interstitial_formation(emt, copper, "vacancy")


@pytest.mark.parametrize("kwargs, match", [
    ({"defect": "antisite"}, "defect='antisite'"),
    ({"supercell": 0}, "supercell=0"),
    ({"supercell": 2.5}, "supercell=2.5"),
    ({"rattle": -0.1}, "rattle"),
    ({"keep_symmetry": "yes"}, "keep_symmetry='yes'"),
    ({"keep_symmetry": True, "rattle": 0.02}, "keep_symmetry=True and rattle=0.02"),
])
def test_defect_settings_are_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        DefectSettings(**kwargs)


@pytest.mark.parametrize("kwargs, symmetric, displacement", [
    ({"defect": "vacancy"}, False, 0.02),
    ({"defect": "vacancy", "keep_symmetry": True}, True, 0.0),
    ({"defect": "octahedral"}, True, 0.0),
    ({"defect": "dumbbell"}, True, 0.0),
    ({"defect": "dumbbell", "rattle": 0.05}, False, 0.05),
    ({"defect": "tetrahedral", "keep_symmetry": False}, False, 0.02),
])
def test_defect_settings_choose_the_relaxation(kwargs, symmetric, displacement):
    settings = DefectSettings(**kwargs)
    assert settings.symmetric is symmetric and settings.displacement == displacement
