"""The report of a run: ``metrics.json``, ``report.md``, ``report.html`` and plots.

Compute functions elsewhere never plot; this module turns their results into files.
"""

from __future__ import annotations

import html
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._files import write_text_atomic
from .metrics import Predictions

__all__ = ["write_metrics", "plot_learning_curve", "plot_parity", "plot_property_errors",
           "write_report"]

log = logging.getLogger(__name__)


def _json_default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def write_metrics(path: str | os.PathLike, metrics: dict) -> Path:
    """Write ``metrics.json`` (atomically)."""
    return write_text_atomic(path, json.dumps(metrics, indent=2, default=_json_default))


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curve(path_summary: Sequence[dict], out: Path,
                        property_curve: Sequence[dict] | None = None) -> Path | None:
    """Validation RMSE (and optionally the mean property error) vs active basis size."""
    rows = [r for r in path_summary if "validation_rmse" in r]
    if not rows:
        return None
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.loglog([max(r["n_active"], 1) for r in rows], [r["validation_rmse"] for r in rows],
              label="validation RMSE (weighted rows)")
    ax.set_xlabel("active basis functions")
    ax.set_ylabel("validation RMSE")
    if property_curve:
        ax2 = ax.twinx()
        ax2.plot([r["n_active"] for r in property_curve],
                 [r["mean_abs_error_percent"] for r in property_curve], "o-", color="C1",
                 label="mean |property error| (%)")
        ax2.set_ylabel("mean |property error| (%)")
        ax2.legend(loc="upper right", fontsize=8)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_parity(pred: Predictions, out: Path, title: str = "") -> Path | None:
    """Energy (eV/atom) and force (eV/Å) parity plots side by side."""
    if pred.energy_ref.size == 0 and pred.force_ref.size == 0:
        return None
    plt = _figure()
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    for ax, ref, model, label in ((axes[0], pred.energy_ref, pred.energy_pred, "energy (eV/atom)"),
                                  (axes[1], pred.force_ref, pred.force_pred, "force (eV/Å)")):
        if ref.size:
            lo, hi = float(min(ref.min(), model.min())), float(max(ref.max(), model.max()))
            ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
            ax.plot(ref, model, ".", ms=3, alpha=0.6)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"model {label}")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_property_errors(rows: Sequence[dict], out: Path) -> Path | None:
    """Bar chart of the % error of every property that has one."""
    from ..properties.plots import plot_property_errors as _plot

    rows = [r for r in rows if r.get("error_percent") is not None]
    if not rows:
        return None
    _plot(rows, path=out)
    return out


def _fmt(x, digits=4):
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _error_table(errors: dict) -> list[list[str]]:
    keys = ["energy_mae_meV_per_atom", "energy_rmse_meV_per_atom", "force_mae_eV_per_A",
            "force_rmse_eV_per_A", "virial_mae_meV_per_atom"]
    head = ["set", "configs", "E MAE (meV/atom)", "E RMSE (meV/atom)", "F MAE (eV/Å)",
            "F RMSE (eV/Å)", "V MAE (meV/atom)"]
    rows = [[name, str(e.get("n_configs", ""))] + [_fmt(e.get(k)) for k in keys]
            for name, e in errors.items()]
    return [head, *rows]


def _property_table(rows: Sequence[dict]) -> list[list[str]]:
    head = ["property", "unit", "model", "reference", "abs. error", "error (%)"]
    return [head] + [[r["name"], r["unit"], _fmt(r["model"]), _fmt(r["reference"]),
                      _fmt(r["abs_error"], 3), _fmt(r["error_percent"], 3)] for r in rows]


def _md_table(table: list[list[str]]) -> str:
    lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
    lines += ["| " + " | ".join(row) + " |" for row in table[1:]]
    return "\n".join(lines)


def _html_table(table: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in table[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def describe_fit(fit: dict) -> str:
    """One phrase on the fitted model's size and solver (a ``fit`` entry of metrics.json)."""
    if "kernel" in fit:
        k = fit["kernel"]
        return (f"{fit.get('n_basis', '?')} kernel coefficients (σ = {k.get('sigma', '?')}, "
                f"λ = {k.get('lam', '?')}) solved by {fit.get('solver', '?')}")
    return (f"{fit.get('n_selected', '?')} of {fit.get('n_basis', '?')} basis functions "
            f"selected by {fit.get('solver', '?')}")


def write_report(out_dir: str | os.PathLike, metrics: dict, plots: dict[str, Path | None],
               title: str = "mlip-plugin report") -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` from ``metrics`` (metrics.json's content)
    and the plot files (paths inside ``out_dir``)."""
    out_dir = Path(out_dir)
    sections: list[tuple[str, str, list[list[str]] | None, str | None]] = []
    fit = metrics.get("fit", {})
    summary = (f"Model: {metrics.get('model_family', 'linear_ace')}, {describe_fit(fit)}. "
               f"Model file: `{metrics.get('model_file', '')}`.")
    sections.append(("Summary", summary, None, None))
    if metrics.get("errors"):
        sections.append(("Errors", "", _error_table(metrics["errors"]), None))
    if metrics.get("properties"):
        sections.append(("Properties", "Reference: " + str(metrics.get("property_reference", "")),
                         _property_table(metrics["properties"]), None))
    if metrics.get("md"):
        md = metrics["md"]
        sections.append(("MD stability", f"{md.get('summary', '')}", None, None))
    for name, caption in (("learning_curve", "Learning curve"), ("parity", "Parity"),
                          ("property_errors", "Property errors"), ("phonons", "Phonons"),
                          ("msd", "Mean-square displacement"),
                          ("rdf", "Radial distribution function")):
        p = plots.get(name)
        if p is not None:
            sections.append((caption, "", None, Path(p).name))
    md_lines, html_parts = [f"# {title}", ""], [f"<h1>{html.escape(title)}</h1>"]
    for heading, text, table, image in sections:
        md_lines += [f"## {heading}", ""]
        html_parts.append(f"<h2>{html.escape(heading)}</h2>")
        if text:
            md_lines += [text, ""]
            html_parts.append(f"<p>{html.escape(text)}</p>")
        if table:
            md_lines += [_md_table(table), ""]
            html_parts.append(_html_table(table))
        if image:
            md_lines += [f"![{heading}]({image})", ""]
            html_parts.append(f'<img src="{html.escape(image)}" alt="{html.escape(heading)}">')
    md_path = out_dir / "report.md"
    write_text_atomic(md_path, "\n".join(md_lines))
    style = ("<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
             "img{max-width:100%}</style>")
    html_path = out_dir / "report.html"
    write_text_atomic(html_path, f"<!DOCTYPE html><html><head><meta charset='utf-8'>"
                      f"<title>{html.escape(title)}</title>{style}</head><body>"
                      + "\n".join(html_parts) + "</body></html>")
    return md_path, html_path
