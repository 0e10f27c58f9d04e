"""The packages depend one way. Inside ``adain`` each subpackage imports only those below it:
core ← media ← vgg ← model ← jobs ← app, with training beside jobs (on the model, never on jobs
or the app). ``gatys`` may build on adain's foundations (core, media, vgg) and nothing of AdaIN's
model; the comparison code (compare/) and the command line of both methods (nst/) sit above both,
imported by neither."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BELOW = {  # adain subpackage → the adain subpackages it may import
    "core": set(),
    "media": {"core"},
    "vgg": {"core", "media"},
    "model": {"core", "media", "vgg"},
    "jobs": {"core", "media", "vgg", "model"},
    "training": {"core", "media", "vgg", "model"},
    "app": {"core", "media", "vgg", "model", "jobs"},
}
FOUNDATIONS = {"core", "media", "vgg"}  # what gatys may use


def imports(path: Path) -> set[str]:
    """Every module path ``path`` imports absolutely (``a.b`` for ``from a.b import c`` and ``import a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported_packages(package: str) -> dict[str, set[str]]:
    """For each module file of ``package``, the top-level packages it imports (relative imports excluded)."""
    return {str(p.relative_to(ROOT)): {n.split(".")[0] for n in imports(p)} for p in sorted((ROOT / package).rglob("*.py"))}


def adain_subpackages(path: Path) -> set[str]:
    """The ``adain`` subpackages that the module at ``path`` imports."""
    return {name.split(".")[1] for name in imports(path) if name.startswith("adain.") and name.count(".") >= 1}


@pytest.mark.parametrize(
    "package, forbidden", [("adain", {"gatys", "compare", "nst"}), ("gatys", {"compare", "nst"}), ("compare", {"nst"})]
)
def test_dependencies_run_one_way(package, forbidden):
    offenders = {module: names & forbidden for module, names in imported_packages(package).items() if names & forbidden}
    assert offenders == {}


def test_adain_subpackages_import_only_those_below_them():
    assert {p.name for p in (ROOT / "adain").iterdir() if (p / "__init__.py").is_file()} == set(BELOW)
    offenders = {}
    for sub, allowed in BELOW.items():
        for path in sorted((ROOT / "adain" / sub).rglob("*.py")):
            if bad := adain_subpackages(path) - allowed - {sub}:
                offenders[str(path.relative_to(ROOT))] = bad
    assert offenders == {}
    assert sorted(p.name for p in (ROOT / "adain").glob("*.py")) == ["__init__.py"]  # every module in a subpackage


def test_gatys_uses_only_the_shared_foundations():
    used = {str(p.relative_to(ROOT)): adain_subpackages(p) - FOUNDATIONS for p in sorted((ROOT / "gatys").rglob("*.py"))}
    assert {module: bad for module, bad in used.items() if bad} == {}


@pytest.mark.slow
def test_old_module_paths_import_the_moved_modules_with_a_warning():
    """``import adain.transfer`` (where StyleTransfer lived) still works for one release, warning."""
    code = (
        "import warnings, adain.model.style_transfer as new\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import adain.transfer as old\n"
        "assert old is new, old\n"
        "assert any('adain.transfer has moved to adain.model.style_transfer' in str(w.message) for w in caught), caught\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    unknown = subprocess.run([sys.executable, "-c", "import adain.nothing"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "ModuleNotFoundError" in unknown.stderr  # only the listed paths are aliased
