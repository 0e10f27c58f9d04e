"""The packages depend one way: gatys may build on adain's foundations, nothing in adain imports
gatys, and the comparison code (compare/) and the command line of both methods (nst/) sit above
both, imported by neither."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_packages(package: str) -> dict[str, set[str]]:
    """For each module file of ``package``, the top-level packages it imports (relative imports excluded)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    "package, forbidden", [("adain", {"gatys", "compare", "nst"}), ("gatys", {"compare", "nst"}), ("compare", {"nst"})]
)
def test_dependencies_run_one_way(package, forbidden):
    offenders = {module: names & forbidden for module, names in imported_packages(package).items() if names & forbidden}
    assert offenders == {}
