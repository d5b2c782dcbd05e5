"""Trained GDML models: forces are -∇E, invariances, plain state round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from mlip_plugin.errors import InputError, ModelFormatError
from mlip_plugin.kernels import GDMLModel, TrainSettings, train_gdml


@pytest.fixture(scope="module", params=[None, "auto"], ids=["plain", "symmetric"])
def model(ethanol, request):
    """Plain and symmetrised (12 permutations, the default) models: every test runs on both."""
    R, z, E, F = ethanol
    return train_gdml(R[:40], z, E[:40], F[:40], TrainSettings(sigma=20.0, solver="analytic",
                                                                perms=request.param))


def test_forces_are_negative_energy_gradient(model, ethanol_test):
    R = ethanol_test[0][:3]
    _, F = model.predict(R)
    h = 1e-4
    fd = np.empty(R.shape)
    for idx in np.ndindex(R.shape[1:]):
        Rp, Rm = R.copy(), R.copy()
        Rp[(slice(None),) + idx] += h
        Rm[(slice(None),) + idx] -= h
        fd[(slice(None),) + idx] = -(model.predict(Rp)[0] - model.predict(Rm)[0]) / (2 * h)
    assert np.linalg.norm(fd - F) <= 1e-6 * np.linalg.norm(F)


def test_rotation_translation_invariance(model, ethanol_test):
    R = ethanol_test[0][:4]
    E, F = model.predict(R)
    rot = Rotation.from_euler("zyx", [0.3, -1.1, 2.0]).as_matrix()
    E2, F2 = model.predict(R @ rot.T + np.array([1.5, -3.0, 0.7]))
    assert np.allclose(E2, E, rtol=0, atol=1e-9 * np.abs(E).max())
    assert np.allclose(F2, F @ rot.T, rtol=0, atol=1e-9 * np.abs(F).max())


def test_predict_single_matches_batch(model, ethanol_test):
    R = ethanol_test[0][:2]
    E, F = model.predict(R)
    e1, f1 = model.predict_single(R[1])
    assert e1 == pytest.approx(E[1], rel=1e-12)
    assert np.allclose(f1, F[1], rtol=0, atol=1e-9 * np.abs(F).max())  # BLAS summation order


def test_training_forces_fit_far_better_than_test_forces(model, ethanol, ethanol_test):
    R, _, E, F = ethanol
    Ep, Fp = model.predict(R[:40])
    test_mae = np.abs(model.predict(ethanol_test[0])[1] - ethanol_test[3]).mean()
    assert np.abs(Fp - F[:40]).mean() < 0.1 * test_mae  # λ = 1e-10: nearly interpolates
    assert np.mean(Ep - E[:40]) == pytest.approx(0.0, abs=1e-9)  # fitted constant


def test_arrays_round_trip_bit_for_bit(model, ethanol_test):
    arrays, params = model.to_arrays()
    params = json.loads(json.dumps(params))
    again = GDMLModel.from_arrays({k: v.copy() for k, v in arrays.items()}, params)
    R = ethanol_test[0][:3]
    for a, b in zip(model.predict(R), again.predict(R)):
        assert np.array_equal(a, b)
    assert again.record.solver == "analytic"
    assert again.record.sigma == model.record.sigma
    assert again.record.n_perms == model.record.n_perms == len(model.x_train) // 40
    assert again.record.perms == model.record.perms  # the group itself, for provenance


def test_from_arrays_rejects_bad_state(model):
    arrays, params = model.to_arrays()
    with pytest.raises(ModelFormatError, match="missing arrays"):
        GDMLModel.from_arrays({k: v for k, v in arrays.items() if k != "v_train"}, params)
    with pytest.raises(ModelFormatError, match="do not fit"):
        GDMLModel.from_arrays({**arrays, "x_train": arrays["x_train"][:, :5]}, params)


def test_predict_rejects_wrong_atoms(model):
    with pytest.raises(InputError, match="positions R have shape"):
        model.predict(np.zeros((2, 8, 3)))
    with pytest.raises(InputError, match="positions R have shape"):
        model.predict_single(np.zeros((8, 3)))
