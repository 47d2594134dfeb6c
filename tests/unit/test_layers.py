"""The layering rule of DESIGN.md, checked on every import in the package.

Components (apiserver, controllers, agent, proxy, dns, lb) never import each
other; everything but the apiserver reaches the cluster through ``client``;
only the apiserver side sees ``registry`` and ``storage``; ``api`` is the
floor; ``cli`` composes everything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "kubesvc"

ALLOWED: dict[str, set[str]] = {
    "api": {"api"},
    "storage": {"api", "storage"},
    "registry": {"api", "storage", "registry"},
    "apiserver": {"api", "storage", "registry", "apiserver"},
    "client": {"api", "client"},
    "controllers": {"api", "client", "controllers"},
    "agent": {"api", "client", "agent"},
    "proxy": {"api", "client", "proxy"},
    "dns": {"api", "client", "dns"},
    "lb": {"api", "client", "lb"},
    "testing": {"api", "client", "storage", "testing", "proxy"},
    "cli": None,  # type: ignore[dict-item]  # the composition root may import anything
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "kubesvc" or node.module.startswith("kubesvc."):
                out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("kubesvc.")]
    return out


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


FILES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(SRC)) for p in FILES])
def test_imports_respect_layers(path: Path) -> None:
    layer = path.relative_to(SRC).parts[0]
    allowed = ALLOWED.get(layer)
    assert layer in ALLOWED, f"{layer}/ is not a known layer: add it to DESIGN.md and this test"
    if allowed is None:
        return
    bad = [(line, mod) for line, mod in _imports(path) if _layer(mod) not in allowed and _layer(mod) is not None]
    assert not bad, f"{path.relative_to(SRC)} imports across layers: {bad}"
