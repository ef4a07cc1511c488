"""The lock the README's set-up installs with (constraints.txt) against what the project asks for: every
package `pip install -e '.[test]'` reaches is pinned exactly, each pin satisfies every requirement on it, and
torch carries no local label (so a CPU machine and a GPU machine each find their build)."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

LOCK = ROOT / "constraints.txt"


def lock_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, line in enumerate(LOCK.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert match, f"constraints.txt:{number}: not an exact pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"constraints.txt:{number}: {name} pinned twice"
        pins[name] = Version(match.group(2))
    return pins


def project_requirements() -> list[Requirement]:
    """The project's dependencies and those of its test extra, with the extras it includes, flattened."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted, seen, out = ["test"], set(), [Requirement(text) for text in project["dependencies"]]
    while wanted:
        extra = wanted.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for text in extras[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
                wanted.extend(requirement.extras)
            else:
                out.append(requirement)
    return out


def applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = default_environment()
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in (extras or {""}))


def test_the_lock_pins_the_projects_requirements_within_their_bounds():
    pins = lock_pins()
    for requirement in project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"


def test_torch_is_pinned_without_a_local_label():
    torch = lock_pins()["torch"]
    assert torch.local is None, f"torch=={torch}: a local label (+cpu, +cu130) keeps the other build out"
    assert str(torch) == "2.13.0"


def test_the_lock_is_closed_and_consistent_over_what_is_installed():
    """Walk the installed requirement graph from the project's requirements: every distribution reached is
    pinned, and its pin satisfies every requirement that reaches it (what `pip check` asks of the lock)."""
    pins = lock_pins()
    queue = [(requirement, set(requirement.extras), "gap-replay") for requirement in project_requirements()]
    visited: set[tuple[str, frozenset]] = set()
    while queue:
        requirement, extras, parent = queue.pop()
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} (needed by {parent}: {requirement}) is not in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, but {parent} needs {requirement}"
        key = (name, frozenset(extras))
        if key in visited:
            continue
        visited.add(key)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"{name} is pinned but not installed: install with the README's command")
        for text in distribution.requires or []:
            child = Requirement(text)
            if applies(child, extras):
                queue.append((child, set(child.extras), name))
