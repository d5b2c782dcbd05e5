"""One file format for every model family: JSON with base64-encoded arrays.

A model file is a single JSON document::

    {"format": "mlip-plugin-model", "format_version": 1, "family": "linear_ace",
     "params": {...},                       # JSON-safe model parameters (basis spec, E0, ...)
     "arrays": {"coef": {"dtype": "<f8", "shape": [300], "data": "<base64>"}, ...},
     "provenance": {...},                   # see mlip_plugin.models.provenance
     "checksum": "sha256 of everything above"}

Arrays are stored as their raw little-endian bytes, so a round trip is bit-for-bit. Loading
never unpickles: only numeric dtypes are accepted, and the checksum detects a corrupted or
edited file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .._files import write_text_atomic
from ..errors import ModelFormatError

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "write_model_document", "read_model_document",
           "encode_array", "decode_array"]

FORMAT_NAME = "mlip-plugin-model"
FORMAT_VERSION = 1
_ALLOWED_KINDS = "biuf"  # bool, signed/unsigned integers, floats: nothing that can hold code


def encode_array(array: np.ndarray) -> dict:
    a = np.asarray(array)
    if a.dtype.kind not in _ALLOWED_KINDS:
        raise ModelFormatError(f"cannot store an array of dtype {a.dtype} in a model file")
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
    return {"dtype": a.dtype.str, "shape": list(a.shape),
            "data": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(doc: dict, name: str = "") -> np.ndarray:
    try:
        dtype = np.dtype(doc["dtype"])
        shape = tuple(int(s) for s in doc["shape"])
        raw = base64.b64decode(doc["data"], validate=True)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFormatError(f"array {name!r} in the model file is malformed: {err}") from err
    if dtype.kind not in _ALLOWED_KINDS:
        raise ModelFormatError(f"array {name!r} has the disallowed dtype {dtype}")
    if len(raw) != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        raise ModelFormatError(f"array {name!r}: {len(raw)} bytes do not fit shape {shape}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _plain(obj):
    """JSON fallback for numpy scalars and small arrays in params and provenance."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} cannot be stored in a model file")


def _checksum(doc: dict) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=_plain).encode()).hexdigest()


def write_model_document(path: str | os.PathLike, family: str, params: dict,
                         arrays: dict[str, np.ndarray], provenance: dict) -> Path:
    """Write a model file atomically (a temporary file renamed into place)."""
    doc = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "family": family,
           "params": params, "arrays": {k: encode_array(v) for k, v in arrays.items()},
           "provenance": provenance}
    doc = json.loads(json.dumps(doc, default=_plain))  # plain types, as a reader sees them
    doc["checksum"] = _checksum(doc)
    return write_text_atomic(path, json.dumps(doc, indent=1, sort_keys=True))


def read_model_document(path: str | os.PathLike) -> tuple[str, dict, dict, dict]:
    """Read and check a model file.

    Returns
    -------
    family, params, arrays, provenance

    Raises
    ------
    ModelFormatError
        Missing or unreadable file, not a model file, a newer ``format_version``, or a
        checksum mismatch (corrupted or edited file).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ModelFormatError(f"cannot read model file {str(path)!r}: {err}") from err
    except UnicodeDecodeError as err:
        raise ModelFormatError(f"{str(path)!r} is not a valid model file (not UTF-8 text: "
                               f"{err})") from err
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelFormatError(
            f"{str(path)!r} is not a valid model file (corrupted JSON: {err})") from err
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ModelFormatError(f"{str(path)!r} is not an mlip-plugin model file")
    version = doc.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{str(path)!r} has format_version {version!r}, newer than this mlip-plugin "
            f"understands ({FORMAT_VERSION}); upgrade mlip-plugin to load it"
        )
    if type(version) is not int or version < 1:
        raise ModelFormatError(
            f"{str(path)!r} has format_version {version!r}, which no mlip-plugin writes "
            f"(versions 1 to {FORMAT_VERSION}); the file was edited or not written by "
            "mlip-plugin: refit or restore it"
        )
    if doc.get("checksum") != _checksum(doc):
        raise ModelFormatError(
            f"{str(path)!r} is corrupted: its checksum does not match its content; refit or "
            "restore the file"
        )
    if not isinstance(doc.get("family"), str):
        raise ModelFormatError(f"{str(path)!r} names no model family (key 'family'); the file "
                               "was not written by mlip-plugin: refit or restore it")
    for key in ("params", "arrays", "provenance"):
        if not isinstance(doc.get(key, {}), dict):
            raise ModelFormatError(
                f"{str(path)!r} has a {key!r} entry of type {type(doc[key]).__name__}, not a "
                "mapping; the file was not written by mlip-plugin: refit or restore it")
    arrays = {k: decode_array(v, k) for k, v in doc.get("arrays", {}).items()}
    return doc["family"], doc.get("params", {}), arrays, doc.get("provenance", {})
