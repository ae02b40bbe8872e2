"""The package's layers, as docs/architecture.md states them: every package imports only
packages below it (so no two packages import each other), and above ``models/`` and
``families/`` code reaches a model through the contract and the registry only, never a
concrete family's module, class or configuration."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "srflow"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"

#: Layers, lowest first (docs/architecture.md, "Layers"): a package imports only lower ones.
LAYERS: list[set[str]] = [
    {"version", "files", "divergence", "workers"},
    {"config", "data", "flows"},
    {"metrics", "encoders", "sampling"},
    {"models"},
    {"families"},
    {"checkpoints"},
    {"latent"},
    {"inference"},
    {"evaluation", "train"},
    {"app"},
    {"cli"},
    {"__init__", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
#: What code above the models may import from ``models`` and ``families``.
CONTRACT_MODULES = {
    "srflow.models.contract", "srflow.models.sampling", "srflow.models.temperature",
    "srflow.models.onnx_model",  # the contract on an ONNX export of any family; names none
}  # fmt: skip
REGISTRY_MODULES = {"srflow.families", "srflow.families.objective"}
#: The public API re-exports the default family's model and config by name (unchanged API).
PUBLIC_API = "srflow/__init__.py"
FAMILY_NAMES = (
    r"(SRFlow|HCFlow|NCSR|ModelConfig|HCFlowConfig|NCSRConfig|SRFlowEncoding|HCFlowEncoding)"
)


def _package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every ``srflow`` import in the file, function-level ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "srflow":  # ``from srflow import version``
                names = [f"srflow.{a.name}" for a in node.names]
            found += [(node.lineno, name) for name in names if name.startswith("srflow")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("srflow")]
    return found


def _files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_package_has_a_layer() -> None:
    packages = {_package_of(path) for path in _files()}
    assert packages == set(RANK), f"unplaced: {packages - set(RANK)}, gone: {set(RANK) - packages}"


def test_packages_import_only_lower_layers() -> None:
    upward = []
    for path in _files():
        source = _package_of(path)
        for line, module in _imports(path):
            target = module.split(".")[1] if "." in module else "__init__"
            if target != source and RANK[target] >= RANK[source]:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} {source} -> {module}")
    assert not upward, "imports that do not go down:\n" + "\n".join(upward)


def _above_the_models(path: Path) -> bool:
    return _package_of(path) not in {"models", "families"} and RANK[_package_of(path)] > RANK[
        "families"
    ]


def test_above_the_models_only_the_contract_and_the_registry() -> None:
    found = []
    for path in filter(_above_the_models, _files()):
        for line, module in _imports(path):
            family_module = module.startswith(("srflow.models.", "srflow.families."))
            allowed = module in CONTRACT_MODULES | REGISTRY_MODULES
            public = str(path.relative_to(PACKAGE.parent)) == PUBLIC_API
            if family_module and not allowed and not public:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert not found, "concrete family modules used above the models:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "pattern",
    [
        rf"isinstance\([^)]*\b{FAMILY_NAMES}\b",  # a type check on a family's class
        rf"\b{FAMILY_NAMES} \|",  # a union of families
        rf"\| {FAMILY_NAMES}\b",
        rf"assert [^#\n]*\b{FAMILY_NAMES}\b",
        rf"(?<![\"'`\w]){FAMILY_NAMES}\(",  # a family's class or config built by name
    ],
)
def test_no_code_outside_the_models_names_a_family(pattern: str) -> None:
    """What a model can do is the contract's business (capabilities, one-line refusals)."""
    found = []
    for path in _files():
        if _package_of(path) in {"models", "families"} or path.name == "__init__.py" and (
            path.parent == PACKAGE
        ):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if re.search(pattern, code) and not code.lstrip().startswith((">>>", "...")):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_the_documented_layers_are_the_tested_ones() -> None:
    """docs/architecture.md lists the same layers, in the same order."""
    text = DOCS.read_text(encoding="utf-8")
    table = re.search(r"<!-- layers -->\n(.*?)<!-- /layers -->", text, re.S)
    assert table is not None, "docs/architecture.md has no layers table"
    rows = [r for r in table.group(1).splitlines() if r.startswith("|") and "---" not in r][1:]
    documented = [
        {name.strip(" `/") for name in row.split("|")[2].split(",")} for row in rows
    ]
    assert documented == LAYERS
