"""Fitted models (linear ACE, kernel), one versioned file format with provenance."""

from __future__ import annotations

from .base import FAMILIES, Model, Prediction, load_model, register_family
from .fileformat import FORMAT_VERSION
from .provenance import Provenance

__all__ = ["Model", "Prediction", "Provenance", "load_model", "register_family", "FAMILIES",
           "FORMAT_VERSION"]
