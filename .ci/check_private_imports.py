"""Lint: no module of src/hairtrial uses a ``_private`` name of another hairtrial module.

import-linter checks which modules import which (the layer contracts in pyproject.toml); this
checks what they take: ``from hairtrial.x import _name``, ``import hairtrial.x._y`` and
``module._name`` where ``module`` is a hairtrial module imported by the file. Dunder names are
public. Exit status 1 with one line per use (file:line: name), 0 when there are none.

Usage: python .ci/check_private_imports.py [src/hairtrial]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def violations(path: Path, root: Path) -> list[str]:
    own = module_name(path, root)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    modules: dict[str, str] = {}  # local name -> hairtrial module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hairtrial"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if _private(alias.name) and node.module != own:
                    found.append(f"{path}:{node.lineno}: {target}")
                modules[alias.asname or alias.name] = target
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("hairtrial"):
                    if any(_private(p) for p in alias.name.split(".")):
                        found.append(f"{path}:{node.lineno}: {alias.name}")
                    if alias.asname:
                        modules[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
            and modules[node.value.id] != own
        ):
            found.append(f"{path}:{node.lineno}: {modules[node.value.id]}.{node.attr}")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "src/hairtrial")
    found = [v for p in sorted(root.rglob("*.py")) for v in violations(p, root)]
    for line in found:
        print(f"private name of another module: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
