"""The bulk suite: any crystal the user gives (here Cu3Au L1_2 and hcp Cu with EMT)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from mlip_plugin.errors import InputError
from mlip_plugin.properties import SuiteSettings, compare, run_suite
from mlip_plugin.properties.suites import born_lowest_eigenvalue, voigt_moduli

BULK_ROWS = ["volume_per_atom", "bulk_modulus", "energy_per_atom",
             "c11", "c22", "c33", "c12", "c13", "c23", "c44", "c55", "c66",
             "bulk_modulus_voigt", "shear_modulus_voigt", "elastic_min_eigenvalue",
             "mechanically_stable",
             "phonon_max_frequency", "phonon_min_frequency", "phonon_imaginary_modes",
             "md_stable", "md_time_reached", "md_diffusivity"]


def cu3au(a: float = 3.75) -> Atoms:
    """Ordered Cu3Au (L1_2): Au on the cube corners, Cu on the face centres."""
    return Atoms("AuCu3", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5],
                                            [0, 0.5, 0.5]], cell=[a, a, a], pbc=True)


@pytest.fixture(scope="module")
def cu3au_suite():
    from ase.calculators.emt import EMT

    return run_suite(EMT(), "bulk", SuiteSettings.fast(structure=cu3au()))


def _values(result) -> dict:
    return {r["name"]: r["value"] for r in result.rows}


def test_bulk_suite_of_cu3au_has_cubic_elastic_symmetry(cu3au_suite):
    assert [r["name"] for r in cu3au_suite.rows] == BULK_ROWS
    v = _values(cu3au_suite)
    for group in (("c11", "c22", "c33"), ("c12", "c13", "c23"), ("c44", "c55", "c66")):
        assert np.ptp([v[name] for name in group]) < 0.05, group
    assert v["c11"] > v["c12"] > v["c44"] > 10.0  # three distinct constants, not one number
    # B of the E(V) fit and the Voigt B of the stress-strain fit agree
    assert v["bulk_modulus"] == pytest.approx(v["bulk_modulus_voigt"], rel=0.03)
    assert v["bulk_modulus_voigt"] == pytest.approx((v["c11"] + 2 * v["c12"]) / 3, rel=1e-6)
    assert v["shear_modulus_voigt"] == pytest.approx((v["c11"] - v["c12"] + 3 * v["c44"]) / 5,
                                                     rel=1e-6)
    # relaxed: V0 of the E(V) fit is the relaxed cell's (EMT's Cu3Au is not at a = 3.75 Å)
    assert v["volume_per_atom"] == pytest.approx(cu3au_suite.results["eos"].structure
                                                 .get_volume() / 4, rel=1e-3)
    assert v["volume_per_atom"] != pytest.approx(3.75**3 / 4, rel=1e-3)
    assert v["phonon_imaginary_modes"] == 0.0 and v["md_stable"] == 1.0
    json.loads(json.dumps(cu3au_suite.to_dict()))


def test_bulk_suite_compared_with_itself_has_zero_errors(cu3au_suite):
    rows = compare(cu3au_suite, cu3au_suite)
    assert [r["name"] for r in rows] == BULK_ROWS
    for r in rows:
        assert r["abs_error"] == 0.0
        assert r["error_percent"] in (0.0, None)
    assert sum(r["error_percent"] == 0.0 for r in rows) >= 14


def test_every_calculator_starts_from_the_given_structure():
    """The cell is relaxed first: a stretched start gives the same properties, and the
    caller's structure is left as it was."""
    from ase.calculators.emt import EMT

    given = cu3au(3.9)
    settings = SuiteSettings.fast(structure=given, groups=("eos", "elastic"))
    stretched = _values(run_suite(EMT(), "bulk", settings))
    near = _values(run_suite(EMT(), "bulk", SuiteSettings.fast(structure=cu3au(3.73),
                                                               groups=("eos", "elastic"))))
    for name in ("volume_per_atom", "bulk_modulus", "c11", "c12", "c44"):
        assert stretched[name] == pytest.approx(near[name], rel=0.01), name
    assert given.cell[0, 0] == 3.9 and given.calc is None


def test_bulk_suite_of_hcp_copper_has_hexagonal_elastic_symmetry():
    """A non-cubic cell: C11 = C22 ≠ C33, C13 = C23 ≠ C12, C44 = C55 ≠ C66 and
    C66 = (C11 − C12)/2 (transverse isotropy about c)."""
    from ase.calculators.emt import EMT

    result = run_suite(EMT(), "bulk", SuiteSettings.fast(structure=bulk("Cu", "hcp", a=2.55),
                                                         groups=("elastic",)))
    v = _values(result)
    assert v["c11"] == pytest.approx(v["c22"], abs=0.5)
    assert v["c13"] == pytest.approx(v["c23"], abs=0.5)
    assert v["c44"] == pytest.approx(v["c55"], abs=0.5)
    assert v["c66"] == pytest.approx((v["c11"] - v["c12"]) / 2, abs=1.0)
    assert abs(v["c33"] - v["c11"]) > 10.0
    assert abs(v["c12"] - v["c13"]) > 10.0
    assert abs(v["c66"] - v["c44"]) > 1.0


def test_voigt_moduli_of_an_isotropic_solid():
    lam, mu = 60.0, 30.0
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[np.arange(3), np.arange(3)] = lam + 2 * mu
    C[np.arange(3, 6), np.arange(3, 6)] = mu
    (b, b_err), (g, g_err) = voigt_moduli(C, np.ones((6, 6)))
    assert b == pytest.approx(lam + 2 * mu / 3) and g == pytest.approx(mu)
    assert b_err == pytest.approx(math.sqrt(3 / 81 + 3 * 4 / 81))
    assert g_err == pytest.approx(math.sqrt((3 + 3 + 3 * 9) / 225))


def test_compare_gives_no_percentage_of_a_reference_that_is_zero():
    """A reference value that is 0, or 0 within its own uncertainty, gets no % error (the
    absolute error stays); nothing is inf or NaN."""
    model = [{"name": n, "unit": "GPa", "value": 1.0, "uncertainty": None}
             for n in ("c12", "c13", "c23", "c44")]
    reference = [{"name": "c12", "unit": "GPa", "value": 0.0, "uncertainty": None},
                 {"name": "c13", "unit": "GPa", "value": 1e-12, "uncertainty": None},
                 {"name": "c23", "unit": "GPa", "value": 0.02, "uncertainty": 0.05},
                 {"name": "c44", "unit": "GPa", "value": 0.5, "uncertainty": 0.05}]
    rows = {r["name"]: r for r in compare(model, reference)}
    for name in ("c12", "c13", "c23"):
        assert rows[name]["error_percent"] is None, name
        assert math.isfinite(rows[name]["abs_error"])
    assert rows["c23"]["abs_error"] == pytest.approx(0.98)
    assert rows["c44"]["error_percent"] == pytest.approx(100.0)
    # a mapping without uncertainties: only the exact or tiny zero loses its percentage
    plain = {r["name"]: r for r in compare(model, {"c12": 1e-12, "c44": 0.02})}
    assert plain["c12"]["error_percent"] is None
    assert plain["c44"]["error_percent"] == pytest.approx(4900.0)


def _isolated() -> Atoms:
    atoms = cu3au()
    atoms.pbc = [True, True, False]
    return atoms


def _overlapping() -> Atoms:
    atoms = cu3au()
    atoms.positions[1] = atoms.positions[0] + [0.01, 0, 0]
    return atoms


@pytest.mark.parametrize("call, match", [
    (lambda c: run_suite(c, "bulk"), "suite 'bulk' needs the crystal"),
    (lambda c: run_suite(c, "fcc", SuiteSettings.fast("Cu", structure=cu3au())),
     "suite 'fcc' builds its own fcc crystal and takes no structure"),
    (lambda c: SuiteSettings(structure=_isolated()), r"periodic in 3 directions.*pbc="),
    (lambda c: SuiteSettings(structure=_overlapping()), "0.01 Å apart.*overlapping atoms"),
    (lambda c: SuiteSettings(structure="Cu3Au.cif"), "must be an ase.Atoms object"),
    (lambda c: run_suite(c, "bulk", SuiteSettings.fast(structure=cu3au(),
                                                       groups=("eos", "vacancy"))),
     r"no group \['vacancy'\] \(vacancy: .*chemical potential"),
    (lambda c: run_suite(c, "bulk", SuiteSettings.fast(structure=cu3au(),
                                                       groups=("surfaces",))),
     r"no group \['surfaces'\].*termination"),
    (lambda c: run_suite(c, "bulk", SuiteSettings.fast(structure=bulk("Si", "diamond",
                                                                      a=5.43))),
     "EMT raised NotImplementedError.*Si2 crystal"),
])
def test_bulk_suite_errors(emt, call, match):
    with pytest.raises(InputError, match=match):
        call(emt)


def test_born_criterion_of_a_stable_crystal_and_of_a_saddle_point(cu3au_suite, caplog):
    """Cu3Au is a minimum of EMT (lowest eigenvalue of C for a cubic crystal: min(c11 - c12,
    c44, c11 + 2 c12)); bcc Cu relaxes onto a saddle point of EMT (c11 < c12), which the
    relaxation cannot tell from a minimum: the Born row says so, with a warning."""
    from ase.calculators.emt import EMT

    v = _values(cu3au_suite)
    cubic_lowest = min(v["c11"] - v["c12"], v["c44"], v["c11"] + 2 * v["c12"])
    assert v["elastic_min_eigenvalue"] == pytest.approx(cubic_lowest, rel=0.02)
    assert v["mechanically_stable"] == 1.0
    with caplog.at_level("WARNING", logger="mlip_plugin.properties.suites"):
        bcc = run_suite(EMT(), "bulk", SuiteSettings.fast(structure=bulk("Cu", "bcc", a=2.87),
                                                          groups=("elastic",)))
    b = _values(bcc)
    assert b["c11"] < b["c12"] and b["elastic_min_eigenvalue"] < 0
    assert b["mechanically_stable"] == 0.0
    assert "mechanically unstable" in caplog.text


def test_born_lowest_eigenvalue_is_that_of_the_symmetric_part():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 6))
    C = a @ a.T + 0.1 * rng.standard_normal((6, 6))  # fitted matrices are nearly symmetric
    assert born_lowest_eigenvalue(C) == pytest.approx(np.linalg.eigvalsh((C + C.T) / 2)[0])
    assert born_lowest_eigenvalue(np.diag([3.0, 2, 1, 1, 1, -0.5])) == -0.5


def test_starting_relaxation_has_its_own_step_limit():
    """The bulk suite's start may be far from equilibrium: its relaxation takes
    SuiteSettings.relax_steps (default 2000 in either preset), not the 300 steps of the fast
    elastic settings, and a run out of steps says how to raise the limit."""
    from ase.calculators.emt import EMT

    from mlip_plugin.errors import ConvergenceWarning
    from mlip_plugin.properties import ElasticSettings

    far = cu3au(4.3)
    far.rattle(0.2, seed=1)
    tight = ElasticSettings(n_steps=3, fmax=1e-3, steps=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the start converges: no warning
        result = run_suite(EMT(), "bulk", SuiteSettings.fast(structure=far, groups=("eos",),
                                                             elastic=tight))
    assert result.results["eos"].structure.get_volume() == pytest.approx(
        4 * _values(result)["volume_per_atom"], rel=1e-3)
    with pytest.warns(ConvergenceWarning, match="SuiteSettings.relax_steps"), \
            pytest.raises(InputError, match="no minimum"):  # 2 steps leave it far: E(V) fails
        run_suite(EMT(), "bulk", SuiteSettings.fast(structure=far, groups=("eos",),
                                                    relax_steps=2))
    with pytest.raises(InputError, match="relax_steps"):
        SuiteSettings.fast(structure=far, relax_steps=0)


def test_phonon_supercell_follows_the_cell_heights():
    """The bulk suite repeats the given cell until every height of the supercell is at least
    phonon_length (fast 7 Å, default 10 Å): 2×2×2 / 3×3×3 of a 3.7 Å cube as before, fewer
    repeats along a long axis (a fixed 2×2×2 of a large cell was 8× its size)."""
    from ase.calculators.emt import EMT

    from mlip_plugin.properties.suites import phonon_repeats

    assert phonon_repeats(cu3au(3.75), 7.0) == (2, 2, 2)
    assert phonon_repeats(cu3au(3.75), 10.0) == (3, 3, 3)
    assert phonon_repeats(cu3au(3.75).repeat((1, 1, 3)), 7.0) == (2, 2, 1)
    primitive = bulk("Cu", "fcc", a=3.6)  # heights a / sqrt(3) = 2.078 Å
    assert phonon_repeats(primitive, 7.0) == (4, 4, 4)
    assert phonon_repeats(primitive, 3.6 / 3**0.5) == (1, 1, 1)  # exactly one height
    long = cu3au(3.7).repeat((1, 1, 2))
    result = run_suite(EMT(), "bulk", SuiteSettings.fast(structure=long, groups=("phonons",)))
    assert result.results["phonons"].settings.supercell == (2, 2, 1)
    assert _values(result)["phonon_imaginary_modes"] == 0.0
    with pytest.raises(InputError, match="phonon_length"):
        SuiteSettings.fast(structure=long, phonon_length=0.0)
