"""Every bad-input path of the kernels layer raises InputError with a clear message."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms

from mlip_plugin.data import Configuration
from mlip_plugin.errors import InputError
from mlip_plugin.kernels import (
    GDMLOperator,
    TrainSettings,
    arrays_from_configs,
    build_factor,
    check_arrays,
    rule_of_thumb_k,
    select_sigma,
    train_gdml,
)


def config(symbols: str, positions) -> Configuration:
    atoms = Atoms(symbols, positions=positions)
    return Configuration(atoms=atoms, energy=-1.0, forces=np.zeros((len(atoms), 3)))


WATER = [[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]


def test_different_atom_counts_across_frames():
    configs = [config("OH2", WATER), config("OH", WATER[:2])]
    with pytest.raises(InputError, match="configuration 1 has 2 atoms but configuration 0 has 3"):
        arrays_from_configs(configs)


def test_different_atom_orderings_across_frames():
    configs = [config("OH2", WATER), config("HOH", WATER)]
    with pytest.raises(InputError, match="orders its atoms .* reorder the atoms"):
        arrays_from_configs(configs)


def test_configs_become_arrays():
    R, z, E, F = arrays_from_configs([config("OH2", WATER)] * 2)
    assert R.shape == (2, 3, 3) and z.tolist() == [8, 1, 1] and E.shape == (2,)


def test_empty_and_unlabelled_configs():
    with pytest.raises(InputError, match="configs is empty"):
        arrays_from_configs([])
    bare = Configuration(atoms=Atoms("OH2", positions=WATER))
    with pytest.raises(InputError, match="lacks an energy or forces"):
        arrays_from_configs([bare])


@pytest.mark.parametrize("sigma", [0.0, -2.0, float("nan"), "wide"])
def test_sigma_must_be_positive(sigma, make_molecule):
    R, z = make_molecule(2)
    with pytest.raises(InputError, match="sigma="):
        GDMLOperator(R, sigma)
    with pytest.raises(InputError, match="sigma="):
        train_gdml(R, z, np.zeros(2), np.zeros(R.shape), TrainSettings(sigma=sigma))


def test_rank_larger_than_system(make_molecule):
    R, z = make_molecule(2)  # n = 30
    op = GDMLOperator(R, 2.0)
    with pytest.raises(InputError, match=r"rank k=31 .* n = 3 \* n_atoms \* n_train = 30"):
        build_factor(op, "cholesky", 31, np.random.default_rng(0))
    with pytest.raises(InputError, match="rank k=31"):
        train_gdml(R, z, np.zeros(2), np.zeros(R.shape), TrainSettings(solver="pcg", k=31))
    with pytest.raises(InputError, match="rank k=0"):
        build_factor(op, "uniform", 0, np.random.default_rng(0))


@pytest.mark.parametrize("field, value, match", [
    ("lam", 0.0, "lam=0.0"),
    ("solver", "lu", "solver='lu' is not known"),
    ("preconditioner", "ilu", "preconditioner='ilu' is not known"),
    ("tol", 2.0, "tol=2.0"),
    ("woodbury", "lu", "woodbury='lu' is not known"),
    ("lam", "1e-6", "lam='1e-6' is not a number"),
    ("lam", None, "lam=None is not a number"),
    ("maxiter", 0, "maxiter=0 is not allowed"),
    ("maxiter", 2.5, "maxiter=2.5 is not allowed"),
])
def test_bad_settings(field, value, match, make_molecule):
    R, z = make_molecule(2)
    with pytest.raises(InputError, match=match):
        train_gdml(R, z, np.zeros(2), np.zeros(R.shape), TrainSettings(**{field: value}))


def test_bad_arrays(make_molecule):
    R, z = make_molecule(2)
    with pytest.raises(InputError, match="positions R must have shape"):
        check_arrays(R[0], z)
    with pytest.raises(InputError, match="atomic numbers z must have shape"):
        check_arrays(R, z[:3])
    with pytest.raises(InputError, match="F must be finite with shape"):
        check_arrays(R, z, np.zeros(2), np.zeros((2, 4, 3)))
    for bad_z in (z + 0.7, np.zeros_like(z), np.array(["C", "H", "H", "H"][:len(z)])):
        with pytest.raises(InputError, match="atomic numbers z must be whole numbers"):
            check_arrays(R, bad_z)
    assert check_arrays(R, z.astype(float))[1].dtype.kind == "i"  # 6.0 is carbon
    bad = R.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        check_arrays(bad, z)
    bad = R.copy()
    bad[1, 2] = bad[1, 0]
    with pytest.raises(InputError, match="frame 1: atoms 2 and 0 are 0 Å apart"):
        check_arrays(bad, z)


def test_bad_rule_parameters_and_sigma_grid(make_molecule):
    with pytest.raises(InputError, match="m=-1"):
        rule_of_thumb_k(100, m=-1)
    R, z = make_molecule(3)
    with pytest.raises(InputError, match="sigmas is empty"):
        select_sigma(R, z, np.zeros(3), np.zeros(R.shape), R, np.zeros(R.shape), [])


def test_forces_are_required_and_energies_optional(make_molecule):
    R, z = make_molecule(4)
    F = np.random.default_rng(1).standard_normal(R.shape)
    with pytest.raises(InputError, match="fits forces, and none were given"):
        train_gdml(R, z, np.zeros(4), None)
    plain = train_gdml(R, z, None, F, TrainSettings(sigma=2.0, perms=None))
    with_e = train_gdml(R, z, np.full(4, 3.0), F, TrainSettings(sigma=2.0, perms=None))
    assert plain.e0 == 0.0
    e_plain, f_plain = plain.predict(R)[:2]
    e_with, f_with = with_e.predict(R)[:2]
    np.testing.assert_allclose(f_plain, f_with, rtol=0, atol=1e-12)
    np.testing.assert_allclose(e_with - e_plain, with_e.e0, rtol=1e-12)


def test_incomplete_cholesky_stops_at_the_rank_with_many_tied_zero_pivots():
    """Identical frames of an axis-aligned diatomic: once the rank is reached, many residual
    diagonals tie at zero; the pivot search used to miss argmax's pick and loop forever."""
    R = np.repeat(np.array([[[0, 0, 0], [0, 0, 1.1]]], float), 100, 0)  # n = 600
    op = GDMLOperator(R, 10.0)
    factor = build_factor(op, "cholesky", 50, np.random.default_rng(0))
    assert 0 < factor.k < 50
    K = op.dense()
    resid = K - factor.Lt.T @ factor.Lt
    assert np.abs(resid).max() < 1e-8 * np.abs(K).max()
