"""The layers hold: no stage imports another stage, the foundation imports no stage, no import circle.

Read from the source with `ast` (every import, also those inside functions), so a lazy import
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The orchestration: it knows the stages through the registry.
APPLICATION = {"gap_replay.cli", "gap_replay.build", "gap_replay.stages", "gap_replay.__main__"}
FOUNDATION = "gap_replay.core"
# Each stage folder installs as gap_replay.<folder> (pyproject's package-dir).
STAGES = ("pubmed_ingest", "guidelines_scraper", "filters", "replay", "dedup", "mixer", "train")


def _modules() -> dict[str, Path]:
    modules = {}
    for folder in ("gap_replay", *STAGES):
        prefix = () if folder == "gap_replay" else ("gap_replay",)
        for path in (ROOT / folder).rglob("*.py"):
            parts = prefix + path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules `name` imports (a `from package import module` counts the module)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in MODULES and target != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    if module in APPLICATION:
        return "application"
    # The package itself (its __init__ holds only the version) belongs with the foundation.
    if module in ("gap_replay", FOUNDATION) or module.startswith(FOUNDATION + "."):
        return "foundation"
    return module.split(".")[1]


def test_the_packages_are_found():
    assert {_layer(module) for module in MODULES} == {"application", "foundation", *STAGES}


@pytest.mark.parametrize("module", sorted(name for name in MODULES if _layer(name) in STAGES))
def test_a_stage_imports_no_other_stage(module):
    own = _layer(module)
    others = sorted(target for target in GRAPH[module] if _layer(target) not in (own, "foundation"))
    assert not others, f"{module} imports {others}"


@pytest.mark.parametrize("module", sorted(name for name in MODULES if _layer(name) == "foundation"))
def test_the_foundation_imports_no_stage(module):
    above = sorted(target for target in GRAPH[module] if _layer(target) != "foundation")
    assert not above, f"{module} imports {above}"


def test_no_import_circle():
    # Tarjan's strongly connected components: any component of more than one module is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(GRAPH[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"


def test_the_registry_lists_every_stage_package():
    from gap_replay.stages import STAGE_MODULES

    declared = {module.split(".")[1] for module in STAGE_MODULES}
    with_stage = {package for package in STAGES if (ROOT / package / "stage.py").is_file()}
    assert declared == with_stage == set(STAGES)
