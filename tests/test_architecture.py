"""The package structure docs/ARCHITECTURE.md describes, held against the source.

The data flows one way — ingest → integrity → detect → crypto → storage → ledger → transfer →
protocol → the adapters (service, dicom, client) → the CLI — so a package imports only packages
below it; service and dicom never import each other except in the server wiring, which joins
them; no module imports another package's private module; modules and functions stay small
enough to read. (tests/test_import_graph.py finds import cycles, lazy imports included.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "scanseal"
LAYERS: list[set[str]] = [
    {
        "__init__",
        "errors",
        "_json",
        "_bounds",
        "_address",
        "_disk",
        "_lock",
        "_passphrase",
        "_sqlite",
        "_toml",
        "config",
    },
    {"ingest"},
    {"integrity"},
    {"detect"},
    {"crypto"},
    {"storage"},
    {"ledger"},
    {"transfer"},
    {"audit"},
    {"protocol"},
    {"client", "dicom", "service"},
    {"console"},
    {"backup"},
    {"_cli", "_commands", "cli", "demo", "__main__"},
]
JOINS_SERVICE_AND_DICOM = {"scanseal.service.server"}
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        yield name, path, ast.parse(path.read_text("utf-8"))


def _imports(tree: ast.Module) -> set[str]:
    """Every scanseal module ``tree`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scanseal"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("scanseal")}
    return found


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


GRAPH = {name: _imports(tree) for name, _path, tree in _modules()}


def test_every_package_has_a_layer() -> None:
    packages = {_top(name) for name in GRAPH}
    assert packages <= set().union(*LAYERS), packages - set().union(*LAYERS)


def test_imports_go_down_the_layers() -> None:
    upward = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if target in GRAPH and _layer(_top(target)) > _layer(_top(name))
    ]
    assert upward == []


def test_service_and_dicom_meet_only_in_the_server_wiring() -> None:
    crossing = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if {_top(name), _top(target)} == {"service", "dicom"}
        and name not in JOINS_SERVICE_AND_DICOM
    ]
    assert crossing == []
    assert not any(
        _top(t) == "service" for n, ts in GRAPH.items() if _top(n) == "dicom" for t in ts
    )


def test_no_private_module_is_imported_from_another_package() -> None:
    reaches = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if _top(target) != _top(name)
        and any(part.startswith("_") for part in target.split(".")[2:])
        and target in GRAPH
    ]
    assert reaches == []


@pytest.mark.parametrize(("name", "path", "tree"), [pytest.param(*m, id=m[0]) for m in _modules()])
def test_modules_and_functions_are_small(name: str, path: Path, tree: ast.Module) -> None:
    lines = len(path.read_text("utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name}: {lines} lines"
    long = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []


def test_the_cli_alone_joins_the_adapters() -> None:
    """Nothing below the CLI imports it."""
    assert not [
        n for n, ts in GRAPH.items() if _top(n) not in LAYERS[-1] for t in ts if _top(t) == "_cli"
    ]
