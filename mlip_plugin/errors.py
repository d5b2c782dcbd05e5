"""The one error hierarchy of mlip-plugin.

Every message names the parameter (or file, or configuration), the value received, what is
allowed and what to do.  ``InputError`` subclasses ``ValueError`` so that callers that
already catch ``ValueError`` keep working.
"""

from __future__ import annotations

__all__ = ["MLIPError", "InputError", "FitError", "ModelFormatError",
           "ReferenceCalculationError", "ConvergenceWarning", "DependentColumnWarning"]


class MLIPError(Exception):
    """Base class of every error raised on purpose by mlip-plugin."""


class InputError(MLIPError, ValueError):
    """Bad input: unreadable file, missing label, NaN, unknown species, bad setting, ..."""


class FitError(MLIPError, RuntimeError):
    """A fit could not produce a model (e.g. a singular system that no fallback could solve)."""


class ModelFormatError(InputError):
    """A model file that cannot be loaded: corrupted, unknown or newer ``format_version``."""


class ReferenceCalculationError(MLIPError, RuntimeError):
    """The reference calculator raised while computing a property of the validation suite;
    the message names the calculator, the property group and the original error, which is
    the ``__cause__``."""


class ConvergenceWarning(UserWarning):
    """An iterative method stopped before its tolerance, or a numerical pivot collapsed."""


class DependentColumnWarning(ConvergenceWarning):
    """A path solver met a basis function numerically dependent on those it had selected
    and skipped it (or stopped): expected with a large basis, and no action is needed.
    The pipeline's fit logs their number instead of showing each warning."""
