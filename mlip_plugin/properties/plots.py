"""Plots of property results (matplotlib); the compute modules never plot.

Each function returns the matplotlib ``Figure`` and, given ``path``, also saves it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_property_errors", "plot_phonon_bands", "plot_msd", "plot_rdf"]


def _figure(figsize):
    """A pyplot-free figure (no global state, works without a display)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.add_subplot()


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def plot_property_errors(comparison: list, path=None):
    """Horizontal bars of the signed % error per property (rows of `compare`)."""
    rows = [r for r in comparison if r["error_percent"] is not None]
    fig, ax = _figure((6, 0.35 * len(rows) + 1.2))
    names = [r["name"] for r in rows]
    errors = np.array([r["error_percent"] for r in rows])
    ax.barh(names, errors, color=np.where(errors >= 0, "tab:red", "tab:blue"))
    ax.axvline(0.0, color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set_xlabel("error vs reference (%)")
    return _finish(fig, path)


def plot_phonon_bands(result, reference=None, path=None, labels=("model", "reference")):
    """Band structure of a `PhononResult`, optionally over a reference one (same path)."""
    fig, ax = _figure((6, 4))
    sets = [(result, "tab:blue", "-")]
    if reference is not None:
        sets.insert(0, (reference, "k", "--"))
        labels = labels[::-1]
    handles = []  # one legend entry per band structure (ax.plot makes a line per band)
    for (res, color, style), label in zip(sets, labels):
        for k, (d, f) in enumerate(zip(res.distances, res.frequencies)):
            lines = ax.plot(d, f, color=color, ls=style, lw=1)
            if k == 0:
                lines[0].set_label(label)
                handles.append(lines[0])
    ticks = [d[0] for d in result.distances] + [result.distances[-1][-1]]
    names = [start for start, _ in result.labels] + [result.labels[-1][1]]
    for k in range(1, len(result.labels)):  # a path break shows as "end|start"
        if result.labels[k - 1][1] != result.labels[k][0]:
            names[k] = f"{result.labels[k - 1][1]}|{result.labels[k][0]}"
    for x in ticks:
        ax.axvline(x, color="0.7", lw=0.5)
    ax.set_xticks(ticks, names)
    ax.axhline(0.0, color="0.5", lw=0.5)
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_ylabel("frequency (THz)")
    ax.legend(handles=handles)
    return _finish(fig, path)


def plot_msd(results, path=None, labels=None):
    """MSD against lag time for one or several `MDResult`s, with the fitted 6Dt lines."""
    results = results if isinstance(results, (list, tuple)) else [results]
    fig, ax = _figure((5, 4))
    for k, res in enumerate(results):
        label = labels[k] if labels else f"{res.settings.temperature:g} K"
        ax.plot(res.msd_times, res.msd, label=f"{label}: D={res.diffusivity:.3g}"
                f"±{res.diffusivity_error:.2g} Å²/ps")
        line = 6 * res.diffusivity * res.msd_times  # slope 6D through the last point
        ax.plot(res.msd_times, line + res.msd[-1] - line[-1], color="0.5", ls=":", lw=0.8)
    ax.set_xlabel("lag time (ps)")
    ax.set_ylabel("MSD (Å²)")
    ax.legend()
    return _finish(fig, path)


def plot_rdf(results, path=None, labels=None):
    """g(r) of one or several `MDResult`s."""
    results = results if isinstance(results, (list, tuple)) else [results]
    fig, ax = _figure((5, 4))
    for k, res in enumerate(results):
        ax.plot(res.rdf_r, res.rdf, label=labels[k] if labels else
                f"{res.settings.temperature:g} K")
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)")
    ax.legend()
    return _finish(fig, path)
