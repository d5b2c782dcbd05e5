"""The trained GDML force field: plain arrays, predictions of energies and forces.

With ``α`` the solution of ``(K + λ I) α = F_train`` and ``v_b = J_b α_b`` (one descriptor-sized
vector per training frame), the prediction at positions ``R`` with descriptor ``x`` is

    E(R) = Σ_b ∇κ(x - x_b) · v_b + e0 = -Σ_b w1(r_b) (x - x_b) · v_b + e0,
    F(R) = -∇_R E = J(R)ᵀ Σ_b [w1(r_b) v_b - a² w0(r_b) (x - x_b) ((x - x_b) · v_b)],

so forces are the exact negative gradient of the energy, and both need only the training
descriptors ``x_b`` and the vectors ``v_b`` (``O(n_train · D)`` per structure).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError, ModelFormatError
from .descriptor import Molecules, check_arrays
from .gdml import Matern52

__all__ = ["GDMLModel", "TrainingRecord"]

#: Bytes of scratch space one block of a prediction may use.
PREDICT_BYTES = 64 * 2**20


@dataclass(frozen=True)
class TrainingRecord:
    """How a model was trained (JSON-safe apart from the arrays, which are small).

    Attributes
    ----------
    sigma, lam : float
        Kernel length scale and ridge parameter.
    solver : {"analytic", "pcg"}
    preconditioner : str
        ``"none"`` for the analytic solver, else the preconditioner kind.
    k : int
        Rank of the preconditioner (0 for the analytic solver).
    k_choice : str
        How ``k`` was chosen: ``"given"``, ``"rule"``, ``"calibrated"``, ``"cost"`` (see
        ``TrainSettings.k``); ``"none"`` for the analytic solver.
    inducing : ndarray of int, shape (k,)
        Indices of the inducing kernel columns (pivots for incomplete Cholesky).
    n_iter : int
        CG iterations (0 for the analytic solver).
    residuals : ndarray, shape (n_iter + 1,)
        Relative residual ``|r_t| / |y|`` after each iteration (see :class:`.solve.CGResult`;
        the last entry is the true residual ``|y - (K + λI) α| / |y|`` when converged).
    converged : bool
    time_preconditioner, time_solve : float
        Seconds spent building the preconditioner and solving.
    peak_memory_estimate : int
        Estimated peak bytes of the solver.
    jitter : float
        Extra diagonal added to factorise (analytic solver), else 0.
    perms : list of list of int
        The permutations of the symmetrised kernel (identity first); empty for the plain
        kernel.  ``n_perms`` is their number (1 for the plain kernel).
    """

    sigma: float
    lam: float
    solver: str
    preconditioner: str = "none"
    k: int = 0
    k_choice: str = "none"
    inducing: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    n_iter: int = 0
    residuals: np.ndarray = field(default_factory=lambda: np.zeros(0))
    converged: bool = True
    time_preconditioner: float = 0.0
    time_solve: float = 0.0
    peak_memory_estimate: int = 0
    jitter: float = 0.0
    perms: list = field(default_factory=list)

    @property
    def n_perms(self) -> int:
        return max(1, len(self.perms))

    def to_json(self) -> dict:
        """JSON-safe dict (arrays as lists)."""
        out = {k: v.item() if isinstance(v, np.generic) else v
               for k, v in asdict(self).items()}  # numpy scalars (np.bool_) are not JSON
        out["inducing"] = [int(i) for i in self.inducing]
        out["residuals"] = [float(r) for r in self.residuals]
        return out


@dataclass(frozen=True)
class GDMLModel:
    """A trained gradient-domain kernel force field for one molecule.

    Attributes
    ----------
    z : ndarray of int, shape (n_atoms,)
        Atomic numbers, in the order positions must be given.
    x_train : ndarray, shape (n_perms · n_train, D)
        Descriptors of the training frames (1/Å), with those of their permuted copies
        when the kernel was symmetrised.
    v_train : ndarray, shape (n_perms · n_train, D)
        ``J_b α_b`` of each training frame (and ``Q_P J_b α_b`` of its permuted copies).
    alpha : ndarray, shape (n_train, n_atoms, 3)
        Solution of ``(K + λ I) α = F_train``.
    sigma : float
        Kernel length scale.
    e0 : float
        Integration constant (eV).
    record : TrainingRecord, optional
    """

    z: np.ndarray
    x_train: np.ndarray
    v_train: np.ndarray
    alpha: np.ndarray
    sigma: float
    e0: float
    record: TrainingRecord | None = None

    @property
    def n_atoms(self) -> int:
        return len(self.z)

    def predict(self, R) -> tuple[np.ndarray, np.ndarray]:
        """Energies and forces of positions ``R``.

        Parameters
        ----------
        R : array_like, shape (n_frames, n_atoms, 3)
            Positions in Å, atoms in the order of :attr:`z`.

        Returns
        -------
        E : ndarray, shape (n_frames,)
            Energies in eV.
        F : ndarray, shape (n_frames, n_atoms, 3)
            Forces in eV/Å.
        """
        R = np.asarray(R, dtype=float)
        if R.ndim != 3 or R.shape[1:] != (self.n_atoms, 3):
            self._bad_shape(R)
        R = check_arrays(R, self.z)[0]
        E = np.empty(len(R))
        F = np.empty(R.shape)
        step = max(1, PREDICT_BYTES // (8 * 3 * self.x_train.size))
        for start in range(0, len(R), step):
            sl = slice(start, start + step)
            E[sl], F[sl] = self._predict_block(R[sl])
        return E, F

    def predict_single(self, positions) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces (eV/Å, shape (n_atoms, 3)) of one structure; no checks
        beyond the shape, for molecular dynamics."""
        pos = np.asarray(positions, dtype=float)
        if pos.shape != (self.n_atoms, 3):
            self._bad_shape(pos)
        E, F = self._predict_block(pos[None])
        return float(E[0]), F[0]

    def _bad_shape(self, R):
        raise InputError(f"positions R have shape {R.shape}, not (n_frames, {self.n_atoms}, "
                         f"3): the model was trained on atoms z={self.z.tolist()}; give "
                         "frames of the same atoms in the same order (predict_single takes "
                         "one (n_atoms, 3) array)")

    def _predict_block(self, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kern = Matern52(self.sigma)
        mol = Molecules.from_positions(R)
        d = mol.x[:, None, :] - self.x_train[None, :, :]  # (frames, train, D)
        r = np.sqrt(np.einsum("ftp,ftp->ft", d, d))
        w0, w1 = kern.weights(r)
        s = np.einsum("ftp,tp->ft", d, self.v_train)
        E = -(w1 * s).sum(1) + self.e0
        u = w1 @ self.v_train - kern.a**2 * np.einsum("ft,ftp->fp", w0 * s, d)
        return E, mol.jtvp(u)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        """Plain state: a dict of numpy arrays and a JSON-safe dict of parameters."""
        arrays = {"z": self.z, "x_train": self.x_train, "v_train": self.v_train,
                  "alpha": self.alpha}
        params = {"kind": "gdml", "kernel": "matern52", "sigma": float(self.sigma),
                  "e0": float(self.e0),
                  "record": None if self.record is None else self.record.to_json()}
        json.dumps(params)  # guarantees JSON safety
        return arrays, params

    @classmethod
    def from_arrays(cls, arrays: dict, params: dict) -> GDMLModel:
        """Inverse of :meth:`to_arrays`; :class:`ModelFormatError` on missing or bad data."""
        missing = {"z", "x_train", "v_train", "alpha"} - set(arrays)
        if missing or params.get("kind") != "gdml" or "sigma" not in params:
            raise ModelFormatError(f"not a GDML model state: missing arrays {sorted(missing)} "
                                   f"or params kind={params.get('kind')!r} (need 'gdml' and "
                                   "'sigma'); write it with GDMLModel.to_arrays")
        record = params.get("record")
        if record is not None:
            record = TrainingRecord(**{**record,
                                       "inducing": np.asarray(record["inducing"], dtype=int),
                                       "residuals": np.asarray(record["residuals"])})
        z = np.asarray(arrays["z"]).astype(int)
        x, v = np.asarray(arrays["x_train"], float), np.asarray(arrays["v_train"], float)
        if x.shape != v.shape or x.shape[1] != len(z) * (len(z) - 1) // 2:
            raise ModelFormatError(f"x_train {x.shape} and v_train {v.shape} do not fit "
                                   f"{len(z)} atoms; the model state is corrupted")
        return cls(z=z, x_train=x, v_train=v, alpha=np.asarray(arrays["alpha"], float),
                   sigma=float(params["sigma"]), e0=float(params["e0"]), record=record)
