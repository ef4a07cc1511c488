"""Layered TOML configuration, validated with clear errors: the loader every configuration uses.

A configuration is a set of named sections, each a dataclass that owns its fields, defaults and
rules: its fields, types and defaults document the section, and its ``validate()`` method (when it
has one) raises :class:`ConfigError` naming the key. The pipeline's sections are the ``[spark]``
section below and one per registered stage; the trainer's are its own. Values come in layers:
defaults, then a built-in base (e.g. the embedded sample's), then the TOML file, then
``--set section.key=value`` overrides, read as TOML literals (``--set mix.seed=7``,
``--set filter.languages='["en"]'``) falling back to a plain string.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gap_replay.core.errors import ConfigError  # noqa: F401 - re-exported: raised by every section


@dataclass
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "gap-replay"
    ui: bool = False
    log_level: str = "ERROR"
    conf: dict[str, str] = field(default_factory=dict)
    # A stage output gets one part file (data/ and drops/) per this many MiB of input, at least one.
    part_mib: int = 256

    def validate(self) -> None:
        if self.part_mib < 1:
            raise ConfigError(f"spark.part_mib: must be at least 1, got {self.part_mib}")


class Config:
    """The pipeline's configuration: its sections by name, as attributes (``config.mix.seed``)."""

    def __init__(self, sections: Mapping[str, Any]):
        self.__dict__["_sections"] = dict(sections)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["_sections"][name]
        except KeyError:
            raise AttributeError(f"no configuration section {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("sections are fixed; change a section's fields instead")

    @property
    def sections(self) -> dict[str, Any]:
        return dict(self._sections)

    def section_fingerprint(self, *sections: str) -> str:
        """Stable hash of the named sections, used to decide whether a finished output can be reused."""
        data = {name: dataclasses.asdict(self._sections[name]) for name in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {name: dataclasses.asdict(section) for name, section in self._sections.items()}


def check_value(where: str, value: Any, annotation: Any, *, comma_lists: bool = True) -> Any:
    """`value` checked against a setting's type annotation (bool, int, float, str, list, dict).

    With `comma_lists`, a string given for a list of strings is split on commas (`--set pubmed.inputs=a,b`).
    """
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(annotation)
        if comma_lists and isinstance(value, str) and item is str:
            value = [part for part in value.split(",") if part]  # `--set pubmed.inputs=a,b`
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        return [check_value(f"{where}[{i}]", v, item, comma_lists=comma_lists) for i, v in enumerate(value)]
    if origin is dict:
        _, item = typing.get_args(annotation)
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a table, got {value!r}")
        return {str(k): check_value(f"{where}.{k}", v, item, comma_lists=comma_lists) for k, v in value.items()}
    raise ConfigError(f"{where}: unsupported setting type {annotation!r}")  # pragma: no cover


def apply_values(section: Any, values: Mapping[str, Any], where: str, *, comma_lists: bool = True) -> None:
    """Set a section's fields from `values`, each checked against its type annotation."""
    hints = typing.get_type_hints(type(section))
    known = {f.name for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}; known: {', '.join(sorted(known))}")
        setattr(section, key, check_value(f"{where}.{key}", value, hints[key], comma_lists=comma_lists))


def parse_override(text: str) -> tuple[str, str, Any]:
    """`section.key=value` -> (section, key, value)."""
    name, sep, raw = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not key:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key.strip(), value


def apply_layers(sections: Mapping[str, Any], path: str | Path | None = None, overrides: Iterable[str] = (),
                 base: Mapping[str, Any] | None = None, *, comma_lists: bool = True) -> None:
    """Fill `sections` (name -> section object holding its defaults): `base`, then the TOML file at
    `path`, then `overrides`; then each section's own ``validate()``. With `comma_lists`, a string
    given for a list of strings is split on commas (see :func:`check_value`)."""
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if base:
        layers.append(("built-in settings", base))
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            layers.append((str(path), tomllib.loads(path.read_text(encoding="utf-8"))))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: invalid TOML: {error}") from None
    known = ", ".join(sections)
    for where, data in layers:
        for name, values in data.items():
            if name not in sections:
                raise ConfigError(f"{where}: unknown section [{name}]; known: {known}")
            if not isinstance(values, Mapping):
                raise ConfigError(f"{where}: [{name}] must be a table")
            apply_values(sections[name], values, f"{where}: {name}", comma_lists=comma_lists)
    for text in overrides:
        name, key, value = parse_override(text)
        if name not in sections:
            raise ConfigError(f"--set {text}: unknown section {name!r}; known: {known}")
        apply_values(sections[name], {key: value}, f"--set {name}", comma_lists=comma_lists)
    for section in sections.values():
        validate = getattr(section, "validate", None)
        if validate is not None:
            validate()


def load_config(section_types: Mapping[str, type], path: str | Path | None = None, overrides: Iterable[str] = (),
                base: Mapping[str, Any] | None = None) -> Config:
    """A pipeline configuration of the [spark] section and `section_types` (name -> dataclass), layered
    and validated by :func:`apply_layers`."""
    sections = {"spark": SparkConfig(), **{name: kind() for name, kind in section_types.items()}}
    apply_layers(sections, path, overrides, base)
    return Config(sections)
