"""The layers hold: kernel below the domains, domains below the application layer.

Measured from the code's own imports (ast), lazy imports inside functions and
``TYPE_CHECKING`` blocks included; also: one list of domains, every topic filter written
once, a generated topic contract that is up to date, descriptors that say what is missing.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from its.app.registry import BUILTIN_DOMAINS, domains
from its.app.topics_doc import topics_markdown
from its.domain import Domain, DomainError

REPO = Path(__file__).resolve().parents[2]
TOPIC_FILTER = re.compile(r"^(\$share/[^/]+/)?its/v1/\S*[+#]")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in ("its", *BUILTIN_DOMAINS):
        for path in (REPO / pkg).rglob("*.py"):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
            out[name] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module this one imports, at top level or lazily (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.add(node.args[0].value)
    return found


def _layer(module: str) -> str:
    top = module.split(".")[0]
    if top == "its":
        return "app" if module == "its.app" or module.startswith("its.app.") else "kernel"
    return "domain" if top in BUILTIN_DOMAINS else "external"


def test_no_module_imports_a_layer_above_it() -> None:
    rank = {"kernel": 0, "domain": 1, "app": 2}
    upward = []
    for name, path in _modules().items():
        for target in _imports(name, path):
            if _layer(target) != "external" and rank[_layer(target)] > rank[_layer(name)]:
                upward.append(f"{name} ({_layer(name)}) imports {target} ({_layer(target)})")
    assert upward == []


def test_the_layering_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from its.app import cli\n    from ..app import factory\n"
                     "    import importlib; importlib.import_module('parking.service')\n")
    found = _imports("its.sub.probe", probe)
    assert {"its.app.cli", "its.app.factory", "parking.service"} <= found
    assert _layer("its.app.cli") == "app" and _layer("its.db") == "kernel" and _layer("parking") == "domain"


def test_one_list_of_domains_and_each_topic_filter_written_once() -> None:
    lists, filters = 0, defaultdict(set)
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if name.startswith("its") and isinstance(node, ast.List | ast.Tuple | ast.Set):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant) and e.value in BUILTIN_DOMAINS}
                lists += len(names) >= 3
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and TOPIC_FILTER.match(node.value):
                filters[node.value].add(name)
    assert lists == 1  # its.app.registry.BUILTIN_DOMAINS
    assert {f: m for f, m in filters.items() if len(m) > 1} == {}
    assert [d.name for d in domains()][: len(BUILTIN_DOMAINS)] == list(BUILTIN_DOMAINS)


def test_topics_doc_is_generated_from_the_descriptors() -> None:
    text = topics_markdown()
    for domain in domains():
        for topic in domain.topics:
            assert f"### `{topic.filter}`" in text
    on_disk = (REPO / "docs" / "topics.md").read_text(encoding="utf-8")
    assert on_disk == text, "docs/topics.md is stale: run `python -m its.app.topics_doc > docs/topics.md`"


@pytest.mark.parametrize(("kwargs", "part"), [
    ({"title": "t", "settings": ()}, "name"),
    ({"name": "scooters", "settings": ()}, "title"),
    ({"name": "scooters", "title": "t"}, "settings"),
    ({"name": "scooters", "title": "t", "settings": (), "migrations": Path("/nonexistent")}, "migrations"),
])
def test_a_descriptor_missing_a_part_names_the_domain_and_the_part(kwargs: dict, part: str) -> None:
    with pytest.raises(DomainError, match=rf"domain '(scooters|<unnamed>)': part '{part}'"):
        Domain(**kwargs)
