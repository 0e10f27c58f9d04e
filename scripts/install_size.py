"""Disk space of the core install and of each extra, from the distributions installed here.

    python scripts/install_size.py            # in an environment made by `make install`

Each distribution's size is the sum of the files its RECORD lists. The core is this package's
requirements and theirs, recursively; an extra is what its requirements add to the core.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PACKAGE = "adain-style"


def size_mb(name: str) -> float:
    """Megabytes of the files an installed distribution lists."""
    dist = distribution(name)
    total = 0
    for f in dist.files or []:
        path = dist.locate_file(f)
        try:
            total += f.size if f.size is not None else path.stat().st_size
        except OSError:
            pass
    return total / 1e6


def closure(requirements: Iterable[str], extras: frozenset[str] = frozenset()) -> set[str]:
    """The installed distributions ``requirements`` need, their requirements included."""
    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        seen.add(name)
        todo += [r for r in dist.requires or [] if "extra ==" not in r] + [
            r for r in dist.requires or [] if any(f'extra == "{e}"' in r for e in req.extras)
        ]
    return seen


def main() -> int:
    requires = distribution(PACKAGE).requires or []
    core = closure(r for r in requires if "extra ==" not in r)
    print(f"| install | adds | MB |\n|---|---|---|\n| `pip install {PACKAGE}` | {len(core)} distributions | {sum(map(size_mb, core)):,.0f} |")
    for extra in ("train", "app", "export"):
        added = closure((r for r in requires if f'extra == "{extra}"' in r), frozenset({extra})) - core
        print(f"| `[{extra}]` | {', '.join(sorted(added))} | {sum(map(size_mb, added)):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
