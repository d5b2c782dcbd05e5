"""Surface energies: hand computations with ASE's own slab builders, terminations, checks."""

from __future__ import annotations

import numpy as np
import pytest
from ase import units
from ase.build import bulk, fcc100, fcc111
from ase.optimize import FIRE

from mlip_plugin.errors import InputError
from mlip_plugin.properties import SurfaceSettings, build_slab, surface_energy

J_PER_M2 = units._e * 1e20  # J/m^2 per eV/Å^2


def _hand_gamma(calc, builder, a0, layers, symbol="Cu"):
    """γ from ASE's fcc111/fcc100 builders (1×1 cell), relaxed with FIRE."""
    slab = builder(symbol, size=(1, 1, layers), a=a0, vacuum=8.0, periodic=True)
    slab.calc = calc
    FIRE(slab, logfile=None).run(fmax=1e-5, steps=5000)
    cell = bulk(symbol, "fcc", a=a0)
    cell.calc = calc
    mu = cell.get_potential_energy()
    area = np.linalg.norm(np.cross(slab.cell[0], slab.cell[1]))
    return (slab.get_potential_energy() - len(slab) * mu) / (2 * area) * J_PER_M2


@pytest.mark.parametrize("miller, builder", [((1, 1, 1), fcc111), ((1, 0, 0), fcc100)])
def test_cu_emt_surface_energy_matches_hand_computation(emt, copper, miller, builder):
    result = surface_energy(emt, copper, SurfaceSettings(miller=miller))
    hand = _hand_gamma(emt, builder, result.lattice_constant, result.n_planes)
    assert result.surface_energy == pytest.approx(hand, abs=1e-3)
    assert result.convergence_error < 1e-3
    if miller == (1, 1, 1):
        assert result.surface_energy == pytest.approx(1.044, abs=2e-3)  # ECOSYSTEM.md


def test_convergence_check_adds_one_repeat_unit_to_an_expanding_slab(emt, monkeypatch):
    """EMT Al(100) relaxes outwards: the check used to measure the relaxed slab and add two
    repeat units (4 -> 8 planes) instead of one (4 -> 6)."""
    from mlip_plugin.properties import surfaces

    planes = []

    def recording_build_slab(*args, **kwargs):
        slab, n_planes = build_slab(*args, **kwargs)
        planes.append(n_planes)
        return slab, n_planes

    monkeypatch.setattr(surfaces, "build_slab", recording_build_slab)
    aluminium = bulk("Al", "fcc", a=4.05, cubic=True)
    result = surface_energy(emt, aluminium, SurfaceSettings(miller=(1, 0, 0), thickness=5.0,
                                                            vacuum=8.0))
    assert planes == [4, 6]  # (100) repeat unit of the conventional cell: 2 planes
    assert result.thickness > 1.5 * result.lattice_constant  # the slab did expand
    hand = [_hand_gamma(emt, fcc100, result.lattice_constant, n, "Al") for n in (4, 6)]
    assert result.surface_energy == pytest.approx(hand[0], abs=2e-8)
    assert result.convergence_error == pytest.approx(abs(hand[1] - hand[0]), abs=1e-7)


def test_cu_stepped_surface_any_miller_index(emt, copper):
    settings = SurfaceSettings(miller=(2, 1, 1), convergence_check=False)
    stepped = surface_energy(emt, copper, settings).surface_energy
    flat = surface_energy(emt, copper, SurfaceSettings(convergence_check=False)).surface_energy
    assert stepped > flat


@pytest.mark.parametrize("miller, dangling_per_atom, area_per_atom", [
    ((1, 1, 1), 1, np.sqrt(3) / 4),   # shuffle plane: one dangling bond per surface atom
    ((1, 0, 0), 2, 0.5),
])
def test_si_sw_unrelaxed_surface_energy_counts_broken_bonds(sw, sw_params, silicon, miller,
                                                            dangling_per_atom, area_per_atom):
    """In Stillinger-Weber diamond every bond sits at the pair minimum (-epsilon) and every
    angle is tetrahedral (zero three-body energy), so an ideal cut costs epsilon/2 per
    dangling bond: gamma = n_dangling * epsilon / (2 A_atom)."""
    result = surface_energy(sw, silicon, SurfaceSettings(miller=miller, convergence_check=False))
    a = result.lattice_constant
    expected = dangling_per_atom * sw_params["epsilon"] / (2 * area_per_atom * a**2) * J_PER_M2
    assert result.unrelaxed_surface_energy == pytest.approx(expected, rel=1e-6)
    assert a == pytest.approx(4 * 2 ** (1 / 6) * sw_params["sigma"] / np.sqrt(3), abs=1e-4)


def test_build_slab_thickness_and_vacuum(copper):
    slab, n_planes = build_slab(copper, (1, 1, 1), thickness=9.0, vacuum=7.0)
    z = slab.positions[:, 2]
    assert np.ptp(z) >= 9.0 - 1e-8 and n_planes == 6
    assert slab.cell[2, 2] - np.ptp(z) == pytest.approx(14.0)
    assert slab.pbc.all()


def test_slab_too_thin(emt, copper):
    with pytest.raises(InputError, match="only 2 atomic planes"):
        surface_energy(emt, copper, SurfaceSettings(thickness=2.0))


@pytest.mark.parametrize("kwargs, match", [
    ({"vacuum": 2.0}, "vacuum=2.0"),
    ({"miller": (0, 0, 0)}, "not a Miller index"),
    ({"miller": (1, 1)}, "not a Miller index"),
    ({"thickness": -1.0}, "thickness=-1.0"),
])
def test_surface_settings_are_checked(kwargs, match):
    with pytest.raises(InputError, match=match):
        SurfaceSettings(**kwargs)


def test_surface_needs_a_known_lattice(emt):
    with pytest.raises(InputError, match="a surface energy needs an elemental"):
        surface_energy(emt, bulk("Mg"))
