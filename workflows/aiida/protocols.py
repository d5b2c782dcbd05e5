"""Protocols (``fast``, ``balanced``, ``stringent``): named input presets read from YAML.

Each work chain names its YAML file in ``protocols/``; the file has ``default_protocol``,
``default_inputs`` and ``protocols`` (each with a ``description`` and the inputs it changes).
:meth:`ProtocolMixin.get_protocol_inputs` merges default inputs, the protocol and the
caller's ``overrides`` (nested mappings are merged key by key).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from importlib import resources
from typing import ClassVar

import yaml

from mlip_plugin.errors import InputError

__all__ = ["ProtocolMixin", "recursive_merge"]


def recursive_merge(left: Mapping, right: Mapping) -> dict:
    """``left`` updated by ``right``; nested mappings are merged, everything else replaced."""
    out = copy.deepcopy(dict(left))
    for key, value in right.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = recursive_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class ProtocolMixin:
    """Adds protocol look-up to a work chain whose protocol file is ``_protocol_file``."""

    _protocol_file: ClassVar[str] = ""
    #: Override keys a builder takes besides the protocol file's inputs (its sub-namespaces)
    _override_namespaces: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _load_protocol_file(cls) -> dict:
        text = resources.files(__package__).joinpath("protocols", cls._protocol_file)
        return yaml.safe_load(text.read_text())

    @classmethod
    def get_default_protocol(cls) -> str:
        return cls._load_protocol_file()["default_protocol"]

    @classmethod
    def get_available_protocols(cls) -> dict[str, str]:
        """Protocol name -> description."""
        return {name: doc["description"]
                for name, doc in cls._load_protocol_file()["protocols"].items()}

    @classmethod
    def get_protocol_inputs(cls, protocol: str | None = None,
                            overrides: Mapping | None = None) -> dict:
        """Inputs of ``protocol`` (default: the file's default) with ``overrides`` merged in.

        Raises
        ------
        InputError
            If ``protocol`` is not one of :meth:`get_available_protocols`, or ``overrides``
            has a key that is not an input of the protocols (it would be ignored).
        """
        doc = cls._load_protocol_file()
        protocol = protocol or doc["default_protocol"]
        if protocol not in doc["protocols"]:
            raise InputError(f"protocol={protocol!r} is not known to {cls.__name__}; "
                             f"choose one of {sorted(doc['protocols'])}")
        allowed = set(doc.get("default_inputs") or {}).union(
            *(set(p) - {"description"} for p in doc["protocols"].values()))
        unknown = sorted(set(overrides or {}) - allowed)
        if unknown:
            raise InputError(
                f"overrides {unknown} are not protocol inputs of {cls.__name__} and would be "
                f"ignored; allowed: {sorted(allowed | set(cls._override_namespaces))} (set "
                "other inputs on the builder, or pass them as the builder method's keywords)")
        chosen = {k: v for k, v in doc["protocols"][protocol].items() if k != "description"}
        inputs = recursive_merge(doc.get("default_inputs") or {}, chosen)
        return recursive_merge(inputs, overrides or {})
