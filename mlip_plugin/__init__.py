"""mlip-plugin: sparse linear ACE and kernel force fields, from reference data to a validated
interatomic potential, engine-free or inside AiiDA and pyiron."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .errors import (
    ConvergenceWarning,
    FitError,
    InputError,
    MLIPError,
    ModelFormatError,
    ReferenceCalculationError,
)

try:
    __version__ = version("mlip-plugin")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.1.0+unknown"



class _SourceTreeFinder(importlib.abc.MetaPathFinder):
    """In a source checkout, ``calculators/`` and ``workflows/`` sit beside ``mlip_plugin/``
    (setuptools maps them into the package on install).  When this package is imported from
    such a checkout (``python -c "import mlip_plugin.calculators"`` in the project root,
    which shadows an installed copy), map those two subpackages to their folders."""

    def __init__(self, roots: dict[str, Path]):
        self.roots = roots

    def find_spec(self, fullname, path=None, target=None):
        parent, _, name = fullname.rpartition(".")
        if parent != __name__ or name not in self.roots:
            return None
        folder = self.roots[name]
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)])


def _map_source_tree() -> None:
    here = Path(__file__).resolve().parent
    roots = {name: here.parent / name for name in ("calculators", "workflows")
             if not (here / name).is_dir() and (here.parent / name / "__init__.py").is_file()}
    if roots and not any(isinstance(f, _SourceTreeFinder) for f in sys.meta_path):
        # first, ahead of the finder of an editable install (of this or another checkout),
        # which would map the two subpackages to the folders of the installed checkout
        sys.meta_path.insert(0, _SourceTreeFinder(roots))


_map_source_tree()


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
    "ReferenceCalculationError",
    "ConvergenceWarning",
]
