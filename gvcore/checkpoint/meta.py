"""Our checkpoint format's metadata: the :class:`CheckpointMeta` record, the format string, the error type.

One record (``docs/ARCHITECTURE.md``, "Checkpoint format"), written and read by
:func:`gvcore.checkpoint.store.save_checkpoint` and :func:`gvcore.checkpoint.store.load_model`, and read from a file's
header alone (:meth:`CheckpointMeta.read`) by the dashboard's catalog, evaluation and the reproduction.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gvcore import __version__

__all__ = [
    "BLIND_DEGRADATION",
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "CheckpointMeta",
    "has_gvcore_metadata",
    "is_gvcore_format",
]

#: value of the ``format`` metadata key of our checkpoints.
CHECKPOINT_FORMAT = "gvcore-checkpoint/1"

#: ``degradation`` of a model trained on randomised LR (blur, resize, noise, JPEG; Real-ESRGAN's pipeline):
#: no evaluation protocol is its training degradation, so it is scored under either and labelled so.
BLIND_DEGRADATION = "blind"


def is_gvcore_format(metadata: dict[str, str]) -> bool:
    """Whether a ``.safetensors`` header's metadata says the file is in gvcore's format (any version)."""
    return str(metadata.get("format", "")).startswith("gvcore-checkpoint/")


def has_gvcore_metadata(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a readable ``.safetensors`` whose header is in gvcore's format (header only)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return is_gvcore_format(dict(handle.metadata() or {}))
    except Exception:  # not readable as safetensors (safetensors raises its own error types)
        return False


class CheckpointError(ValueError):
    """A checkpoint cannot be written or loaded; the message says which file and why."""


def _current_version() -> str:

    return str(__version__)


_JSON_KEYS = ("arch_kwargs", "loss", "metrics")
_INT_KEYS = ("steps", "seed")
_TEXT_KEYS = ("data", "label", "degradation")


@dataclass(frozen=True)
class CheckpointMeta:
    """The metadata of a gvcore checkpoint (``docs/ARCHITECTURE.md``, "Checkpoint format").

    One record for saving, loading, the dashboard's catalog, evaluation and the reproduction.

    In the file every value is a string (safetensors metadata): JSON for ``arch_kwargs``/``loss``/``metrics``,
    decimal for ``scale``/``steps``/``seed``, ``""`` for a missing optional value.

    Example:
        >>> meta = CheckpointMeta("espcn", 2, loss={"pixel": "l1", "gv_weight": 0.03}, steps=10)
        >>> meta.recipe, meta.gv_weight, CheckpointMeta.from_strings(meta.to_strings()) == meta
        ('l1+gv', 0.03, True)
    """

    arch: str
    scale: int
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] | None = None
    data: str | None = None
    steps: int | None = None
    seed: int | None = None
    metrics: dict[str, Any] | None = None
    label: str | None = None
    degradation: str | None = None
    dtype: str = "float32"
    gvcore_version: str = field(default_factory=lambda: _current_version())
    #: where a published model comes from (:mod:`gvcore.zoo.registry`: package, version, file, SHA-256, licence, how it
    #: was trained); ``None`` for checkpoints trained here. Written only when set (key ``provenance``, JSON).
    provenance: dict[str, Any] | None = None

    @property
    def published(self) -> bool:
        """Whether this is a published model brought in by :mod:`gvcore.zoo.registry` (it has a provenance record)."""
        return self.provenance is not None

    @property
    def gv_weight(self) -> float:
        """The GV loss weight λ it was trained with (0 without the GV term or a loss record)."""
        return float((self.loss or {}).get("gv_weight") or 0.0)

    @property
    def recipe(self) -> str:
        """The loss recipe (``"l1"``, ``"l1+gv"``, ...; ``""`` when unknown)."""
        loss = self.loss or {}
        if loss.get("recipe"):
            return str(loss["recipe"])
        return "+".join(x for x in (loss.get("pixel"), "gv" if loss.get("gv_weight") else None) if x)

    def to_strings(self) -> dict[str, str]:
        """The safetensors metadata (string values), with ``format``."""

        def text(value: Any) -> str:
            return "" if value is None else str(value)

        strings = {"format": CHECKPOINT_FORMAT, "arch": self.arch, "scale": str(int(self.scale))}
        strings |= {key: json.dumps(getattr(self, key), sort_keys=True) for key in _JSON_KEYS}
        strings |= {key: text(getattr(self, key)) for key in (*_INT_KEYS, *_TEXT_KEYS)}
        if self.provenance is not None:
            strings["provenance"] = json.dumps(self.provenance, sort_keys=True)
        return strings | {"dtype": self.dtype, "gvcore_version": self.gvcore_version}

    @classmethod
    def from_strings(cls, raw: Mapping[str, str], default_label: str | None = None) -> CheckpointMeta:
        """Parse safetensors metadata of our format.

        Raises:
            ValueError: a missing ``arch``/``scale`` or a malformed value (the message names the key).
        """
        values: dict[str, Any] = {}
        for key in ("arch", "scale"):
            if not raw.get(key):
                raise ValueError(f"metadata key {key!r} is missing")
        try:
            values["scale"] = int(raw["scale"])
            for key in _INT_KEYS:
                values[key] = int(raw[key]) if raw.get(key) else None
            for key in (*_JSON_KEYS, "provenance"):
                values[key] = json.loads(raw[key]) if raw.get(key) else None
        except ValueError as err:
            raise ValueError(f"malformed metadata value ({err})") from err
        for key in (*_JSON_KEYS, "provenance"):
            if values[key] is not None and not isinstance(values[key], dict):
                raise ValueError(f"metadata key {key!r} must hold a JSON object; got {values[key]!r}")
        values["arch_kwargs"] = values["arch_kwargs"] or {}
        values |= {key: raw.get(key) or None for key in _TEXT_KEYS}
        values["label"] = values["label"] or default_label
        return cls(
            arch=str(raw["arch"]),
            dtype=raw.get("dtype") or "float32",
            gvcore_version=raw.get("gvcore_version") or "",
            **values,
        )

    @classmethod
    def from_dict(cls, metadata: Mapping[str, Any], default_label: str | None = None) -> CheckpointMeta:
        """The record of a :func:`load_model` metadata dict (ours, or a foreign file's ``arch``/``scale``)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in metadata.items() if k in names}
        values["arch_kwargs"] = dict(values.get("arch_kwargs") or {})
        if not isinstance(values.get("loss"), (dict, type(None))):
            values["loss"] = None
        values["label"] = values.get("label") or default_label
        return cls(**values)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> CheckpointMeta:
        """Read the record from a ``.safetensors`` file's header only (no weights are loaded).

        Raises:
            CheckpointError: not a readable ``.safetensors`` file, or not in our format.
        """
        from safetensors import safe_open

        source = Path(path)
        try:
            with safe_open(str(source), framework="pt") as handle:
                raw = dict(handle.metadata() or {})
        except Exception as err:  # safetensors raises its own SafetensorError, OSError or ValueError
            raise CheckpointError(f"{str(source)!r} is not a readable .safetensors file: {err}") from err
        if not is_gvcore_format(raw):
            raise CheckpointError(f"{str(source)!r} is not a gvcore checkpoint (no gvcore metadata)")
        try:
            return cls.from_strings(raw, source.stem)
        except ValueError as err:
            raise CheckpointError(f"{str(source)!r} has malformed gvcore metadata: {err}") from err

    def as_dict(self) -> dict[str, Any]:
        """The record as the plain dict :func:`load_model` returns for our format (without ``source``)."""
        return {**dataclasses.asdict(self), "format": CHECKPOINT_FORMAT}

    def save_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`save_checkpoint` that write this record again."""
        keys = (
            "arch",
            "arch_kwargs",
            "scale",
            "loss",
            "data",
            "steps",
            "seed",
            "metrics",
            "label",
            "degradation",
        )
        return {key: getattr(self, key) for key in keys}
