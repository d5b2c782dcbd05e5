"""mlip-plugin: sparse linear ACE and kernel force fields, from reference data to a validated
interatomic potential, engine-free or inside AiiDA and pyiron."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import ConvergenceWarning, FitError, InputError, MLIPError, ModelFormatError

try:
    __version__ = version("mlip-plugin")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+unknown"



def load_model(path):
    """Load a model file written by any mlip-plugin model (see :mod:`mlip_plugin.models`)."""
    from .models import load_model as _load

    return _load(path)


__all__ = [
    "__version__",
    "load_model",
    "MLIPError",
    "InputError",
    "FitError",
    "ModelFormatError",
    "ConvergenceWarning",
]
