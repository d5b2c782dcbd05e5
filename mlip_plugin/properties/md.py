"""NVT molecular dynamics: stability gate, mean-square displacement, diffusivity, RDF.

The run uses one of ASE's NVT integrators (Langevin, Bussi's stochastic velocity rescaling,
or a Nosé–Hoover chain), starting from Maxwell–Boltzmann velocities.  Every
``sample_interval`` steps a stability gate checks that

* no pair of atoms is closer than ``min_distance`` (default half the initial nearest
  neighbour distance),
* energies and positions are finite and the calculator did not fail,
* after equilibration, the instantaneous temperature lies in [T/f, T·f] with
  f = ``temperature_factor``,
* no atom is lost (no neighbour within ``lost_factor`` initial nearest-neighbour
  distances).

The run stops at the first failure and reports the time reached.  From the production
part (after ``equilibration_steps``) the mean-square displacement (centre-of-mass drift
removed, positions unwrapped) gives the diffusivity D = MSD/(6t) by block averaging:
the production run is cut into ``n_blocks`` blocks, D is fitted in each block from the
slope of its multi-origin MSD, and the error bar is the standard error of the block mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.md import velocitydistribution
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.nose_hoover_chain import NoseHooverChainNVT
from matscipy.neighbours import neighbour_list

from mlip_plugin.errors import InputError

from ._common import check_calculator, check_choice, check_positive, check_structure, freeze

__all__ = ["MDSettings", "MDResult", "nvt_md", "temperature_gate_false_alarms",
           "diffusivity_from_positions", "radial_distribution"]

THERMOSTATS = ("langevin", "bussi", "nose_hoover_chain")


@dataclass(frozen=True)
class MDSettings:
    """Settings of `nvt_md`.

    Attributes
    ----------
    temperature : float
        Target temperature (K).
    thermostat : str
        "langevin", "bussi" or "nose_hoover_chain".
    timestep : float
        fs.
    steps, equilibration_steps : int
        Total MD steps, and the leading part excluded from MSD, RDF and temperature bounds.
    sample_interval : int
        Steps between samples (gate checks, MSD and RDF frames).
    relaxation_time : float
        Thermostat time constant (fs): 1/friction for Langevin, τ for Bussi, damping for
        the Nosé–Hoover chain.
    supercell : int or None
        Repeats of the input cell per axis.  None (default): the smallest repeat whose
        thermal temperature fluctuations keep the temperature gate reliable (see
        `temperature_gate_false_alarms`); an explicit repeat that leaves too few atoms is
        an `InputError`.
    n_blocks : int
        Blocks for the diffusivity error bar (≥ 2).
    fit_start : float
        Fraction of a block's length before the MSD fit window starts (skips the
        ballistic/vibrational rise).
    min_distance : float or None
        Closest allowed pair distance (Å); None: half the initial nearest-neighbour distance.
    temperature_factor : float
        Allowed factor f of the temperature bounds [T/f, T·f].
    lost_factor : float
        An atom with no neighbour within this many initial nearest-neighbour distances
        is lost.
    rdf_rmax, rdf_bins : float, int
        Range (Å) and bins of the radial distribution function.
    seed : int
        Seed of velocities and stochastic thermostats.
    """

    temperature: float = 300.0
    thermostat: str = "langevin"
    timestep: float = 2.0
    steps: int = 2000
    equilibration_steps: int = 500
    sample_interval: int = 10
    relaxation_time: float = 100.0
    supercell: int | None = None
    n_blocks: int = 5
    fit_start: float = 0.2
    min_distance: float | None = None
    temperature_factor: float = 3.0
    lost_factor: float = 2.0
    rdf_rmax: float = 6.0
    rdf_bins: int = 120
    seed: int = 0

    def __post_init__(self):
        check_choice("thermostat", self.thermostat, THERMOSTATS)
        for name in ("temperature", "timestep", "relaxation_time", "rdf_rmax", "lost_factor"):
            check_positive(name, getattr(self, name))
        for name in ("steps", "sample_interval", "rdf_bins"):
            check_positive(name, getattr(self, name), integer=True)
        if self.supercell is not None:
            check_positive("supercell", self.supercell, integer=True)
        check_positive("equilibration_steps", self.equilibration_steps, integer=True,
                       allow_zero=True)
        if self.min_distance is not None:
            check_positive("min_distance", self.min_distance)
        if not 0 <= self.fit_start < 1:
            raise InputError(f"setting fit_start={self.fit_start} must lie in [0, 1); use 0.2.")
        if self.temperature_factor <= 1:
            raise InputError(f"setting temperature_factor={self.temperature_factor} must be "
                             "> 1 (bounds [T/f, T*f]); use e.g. 3.")
        n_samples = (self.steps - self.equilibration_steps) // self.sample_interval
        if self.n_blocks < 2 or n_samples < 4 * self.n_blocks:
            raise InputError(f"settings give {n_samples} production samples for n_blocks="
                             f"{self.n_blocks}; need n_blocks >= 2 and at least 4 samples "
                             "per block: raise steps or lower sample_interval/n_blocks.")

    @classmethod
    def fast(cls, temperature: float = 300.0) -> MDSettings:
        return cls(temperature=temperature, steps=1000, equilibration_steps=200,
                   sample_interval=5, n_blocks=3, fit_start=0.3)


@dataclass
class MDResult:
    """Result of `nvt_md`.

    Attributes
    ----------
    stable : bool
        Whether the stability gate passed for the whole run.
    failure : str or None
        The first gate failure.
    time_reached, total_time : float
        Simulated time reached and requested (ps).
    times, temperatures, potential_energies : ndarray, shape (n_samples,)
        Sampled time (ps), instantaneous temperature (K) and potential energy per atom (eV).
    msd_times, msd : ndarray, shape (n_lag,)
        Lag time (ps) and production MSD (Å^2), averaged over time origins.
    diffusivity, diffusivity_error : float
        D and its block-averaging standard error (Å^2/ps; 1 Å^2/ps = 1e-8 m^2/s); NaN if
        the run was unstable.
    rdf_r, rdf : ndarray, shape (rdf_bins,)
        Bin centres (Å) and g(r) over the production frames.
    min_pair_distance : float
        Closest pair distance seen (Å).
    structure : Atoms
        The final frame (no calculator).
    """

    stable: bool
    failure: str | None
    time_reached: float
    total_time: float
    times: np.ndarray
    temperatures: np.ndarray
    potential_energies: np.ndarray
    msd_times: np.ndarray
    msd: np.ndarray
    diffusivity: float
    diffusivity_error: float
    rdf_r: np.ndarray
    rdf: np.ndarray
    min_pair_distance: float
    structure: Atoms
    settings: MDSettings
    units: str = "Å^2/ps"


def nvt_md(calculator, structure: Atoms, settings: MDSettings | None = None) -> MDResult:
    """Run NVT MD of ``structure`` with ``calculator``; gate, MSD, diffusivity and RDF.

    Parameters
    ----------
    calculator : ase.calculators.calculator.Calculator
        Any ASE calculator with forces.
    structure : ase.Atoms
        A periodic starting structure (repeated ``settings.supercell`` times).
    settings : MDSettings, optional

    Returns
    -------
    MDResult
    """
    settings = settings or MDSettings()
    check_calculator(calculator)
    structure = check_structure(structure)
    n = _supercell(len(structure), settings)
    atoms = structure * (n, n, n)
    atoms.calc = calculator
    # bad input (e.g. a species the model does not know) is the caller's error, not an
    # instability of the potential: let it raise before the run
    atoms.get_potential_energy()
    atoms.get_forces()
    rng = np.random.default_rng(settings.seed)
    _thermalize(atoms, settings.temperature, rng)
    velocitydistribution.Stationary(atoms)
    dyn = _integrator(atoms, settings, rng)
    nn0 = float(neighbour_list("d", atoms, _cutoff(atoms)).min())
    gate = _Gate(settings, nn0)
    frames, times, temps, epots = [], [], [], []
    failure = None
    for k in range(settings.steps // settings.sample_interval):
        try:  # overflow inside a calculator shows up as non-finite numbers, checked below
            dyn.run(settings.sample_interval)
            epot = atoms.get_potential_energy() / len(atoms)
        except (ValueError, RuntimeError, FloatingPointError, ArithmeticError,
                MemoryError, IndexError) as err:
            failure = f"calculator or integrator failed: {type(err).__name__}: {err}"
            break
        step = (k + 1) * settings.sample_interval
        failure = gate.check(atoms, epot, step > settings.equilibration_steps)
        if failure is not None:
            break
        times.append(step * settings.timestep / 1000.0)
        temps.append(atoms.get_temperature())
        epots.append(epot)
        if step > settings.equilibration_steps:
            frames.append(atoms.copy())
    return _result(settings, failure, gate, frames, times, temps, epots, atoms)


#: Largest expected number of false temperature-gate failures of a stable run.
FALSE_ALARM_BUDGET = 1e-3


def temperature_gate_false_alarms(n_atoms: int, settings: MDSettings) -> float:
    """Expected number of production samples whose *thermal* temperature fluctuation alone
    leaves the gate's bounds [T/f, T·f], for ``n_atoms`` atoms.

    In equilibrium the kinetic energy of d = 3N - 3 degrees of freedom (centre of mass
    removed) follows χ²_d / d in units of its mean, so one sample fails with probability
    P(χ²_d < d/f) + P(χ²_d > f d); times the number of production samples (a union bound:
    successive samples are correlated, so this overestimates).  Small cells fail stable
    runs by chance: 4 atoms at f = 3 have P = 0.037 per sample.
    """
    from scipy.stats import chi2

    dof = 3 * n_atoms - 3
    if dof <= 0:
        return float("inf")
    f = settings.temperature_factor
    p = chi2.cdf(dof / f, dof) + chi2.sf(f * dof, dof)
    n_samples = (settings.steps - settings.equilibration_steps) // settings.sample_interval
    return float(p * max(n_samples, 1))


def _supercell(n_cell: int, settings: MDSettings) -> int:
    """The repeat per axis: ``settings.supercell``, or the smallest reliable one."""
    def ok(n):
        return temperature_gate_false_alarms(n_cell * n**3, settings) < FALSE_ALARM_BUDGET

    n_min = next(n for n in range(1, 1000) if ok(n))
    if settings.supercell is None:
        return n_min
    if not ok(settings.supercell):
        n = settings.supercell
        raise InputError(
            f"setting supercell={n} gives {n_cell * n**3} atoms, too few for NVT MD: the "
            f"instantaneous temperature of so few atoms leaves [T/{settings.temperature_factor:g}"
            f", T*{settings.temperature_factor:g}] by thermal fluctuation alone "
            f"({temperature_gate_false_alarms(n_cell * n**3, settings):.2g} expected false "
            f"failures in this run); use supercell >= {n_min} ({n_cell * n_min**3} atoms), "
            "or supercell=None to choose it")
    return settings.supercell


def _result(settings, failure, gate, frames, times, temps, epots, atoms) -> MDResult:
    """Assemble the `MDResult`: analysis only for a stable run."""
    dt_sample = settings.sample_interval * settings.timestep / 1000.0
    stable = failure is None
    nan = float("nan")
    lag, msd, d, d_err = np.zeros(0), np.zeros(0), nan, nan
    r, g = np.zeros(0), np.zeros(0)
    if stable and len(frames) >= 4 * settings.n_blocks:
        positions = _unwrap([f.positions for f in frames], frames[0].cell)
        d, d_err, lag, msd = diffusivity_from_positions(positions, dt_sample,
                                                        settings.n_blocks, settings.fit_start)
        r, g = radial_distribution(frames, settings.rdf_rmax, settings.rdf_bins)
    return MDResult(stable=stable, failure=failure,
                    time_reached=float(times[-1]) if times else 0.0,
                    total_time=settings.steps * settings.timestep / 1000.0,
                    times=np.array(times), temperatures=np.array(temps),
                    potential_energies=np.array(epots), msd_times=lag, msd=msd,
                    diffusivity=d, diffusivity_error=d_err, rdf_r=r, rdf=g,
                    min_pair_distance=gate.closest, structure=freeze(atoms),
                    settings=settings)


def _thermalize(atoms: Atoms, temperature: float, rng) -> None:
    """Maxwell-Boltzmann momenta (``thermalize_momenta`` from ASE 3.29, older name before)."""
    if hasattr(velocitydistribution, "thermalize_momenta"):
        velocitydistribution.thermalize_momenta(atoms, temperature, rng=rng)
    else:  # ASE < 3.29
        velocitydistribution.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature,
                                                          rng=rng)


def _integrator(atoms: Atoms, settings: MDSettings, rng):
    dt = settings.timestep * units.fs
    tau = settings.relaxation_time * units.fs
    if settings.thermostat == "langevin":
        atoms.set_constraint(FixCom())
        return Langevin(atoms, dt, temperature_K=settings.temperature, friction=1.0 / tau,
                        fixcm=False, rng=rng)
    if settings.thermostat == "bussi":
        return Bussi(atoms, dt, temperature_K=settings.temperature, taut=tau, rng=rng)
    return NoseHooverChainNVT(atoms, dt, temperature_K=settings.temperature, tdamp=tau)


def _cutoff(atoms: Atoms) -> float:
    """A neighbour-search radius that finds the nearest neighbour of every atom (Å)."""
    return float(2.0 * (atoms.get_volume() / len(atoms)) ** (1 / 3))


class _Gate:
    """The stability checks; ``closest`` tracks the smallest pair distance seen."""

    def __init__(self, settings: MDSettings, nn0: float):
        self.settings = settings
        self.min_distance = settings.min_distance or 0.5 * nn0
        self.lost_distance = settings.lost_factor * nn0
        self.closest = float("inf")

    def check(self, atoms: Atoms, epot: float, production: bool) -> str | None:
        s = self.settings
        if not (np.isfinite(epot) and np.all(np.isfinite(atoms.positions))
                and np.all(np.isfinite(atoms.get_velocities()))):
            return "non-finite energy, positions or velocities"
        i, d = neighbour_list("id", atoms, self.lost_distance)
        if len(d):
            self.closest = min(self.closest, float(d.min()))
        if len(d) and d.min() < self.min_distance:
            return (f"atoms closer than min_distance={self.min_distance:.3f} Å "
                    f"(closest pair {d.min():.3f} Å)")
        lonely = len(atoms) - len(np.unique(i))
        if lonely:
            return f"{lonely} atom(s) lost: no neighbour within {self.lost_distance:.2f} Å"
        temperature = atoms.get_temperature()
        f = s.temperature_factor
        if production and not s.temperature / f <= temperature <= s.temperature * f:
            return (f"temperature {temperature:.1f} K outside [{s.temperature / f:.1f}, "
                    f"{s.temperature * f:.1f}] K")
        return None


def _unwrap(positions: list, cell) -> np.ndarray:
    """Continuous trajectories from frames: minimum-image steps between samples, summed."""
    x = np.asarray(positions, dtype=float)
    cell = np.asarray(cell)
    steps = np.diff(x, axis=0)
    frac = steps @ np.linalg.inv(cell)
    frac -= np.round(frac)
    return np.concatenate([x[:1], x[0] + np.cumsum(frac @ cell, axis=0)], axis=0)


def diffusivity_from_positions(positions: np.ndarray, dt: float, n_blocks: int = 5,
                               fit_start: float = 0.2):
    """Self-diffusivity from unwrapped positions by block averaging.

    Parameters
    ----------
    positions : ndarray, shape (n_frames, n_atoms, 3)
        Unwrapped positions (Å) at equal time intervals.
    dt : float
        Time between frames (ps).
    n_blocks : int
        Blocks of consecutive frames; D is fitted per block.
    fit_start : float
        Fraction of the block length where the linear fit of MSD(t) starts.

    Returns
    -------
    D, D_err : float
        Mean of the block diffusivities and its standard error (Å^2/ps).
    lag, msd : ndarray, shape (block_len,)
        Lag time (ps) and the MSD (Å^2) averaged over all blocks and time origins.
    """
    x = positions - positions.mean(axis=1, keepdims=True)  # remove centre-of-mass drift
    block_len = len(x) // n_blocks
    lag = np.arange(block_len) * dt
    first = max(1, int(fit_start * block_len))
    values, curves = [], []
    for b in range(n_blocks):
        msd = _msd(x[b * block_len:(b + 1) * block_len])
        slope = np.polyfit(lag[first:], msd[first:], 1)[0]
        values.append(slope / 6.0)
        curves.append(msd)
    values = np.array(values)
    return (float(values.mean()), float(values.std(ddof=1) / np.sqrt(n_blocks)), lag,
            np.mean(curves, axis=0))


def _msd(x: np.ndarray) -> np.ndarray:
    """Multi-origin MSD (Å^2) of one block, shape (n_frames,), lag 0 … n_frames−1."""
    n = len(x)
    out = np.zeros(n)
    for k in range(1, n):
        out[k] = np.mean(np.sum((x[k:] - x[:-k]) ** 2, axis=-1))
    return out


def radial_distribution(frames: list, rmax: float, nbins: int):
    """Radial distribution function g(r) averaged over ``frames``.

    Returns bin centres (Å) and g(r), both shape (nbins,), normalised so that g → 1 for an
    ideal gas at the frames' mean density.
    """
    edges = np.linspace(0.0, rmax, nbins + 1)
    hist = np.zeros(nbins)
    density = 0.0
    for atoms in frames:
        d = neighbour_list("d", atoms, rmax)
        hist += np.histogram(d, bins=edges)[0] / len(atoms)
        density += len(atoms) / atoms.get_volume()
    density /= len(frames)
    shell = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return 0.5 * (edges[1:] + edges[:-1]), hist / (len(frames) * density * shell)
