"""The indicator glossary: every indicator's definition, taken from its function's docstring.

The docstrings are the one definition; the README table is generated from them
(``python -m its.app.reports.glossary``), so the two cannot disagree.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from its.app.registry import report_sections
from its.app.reports.gather import definition

__all__ = ["glossary_markdown", "indicator_functions", "indicator_modules"]

#: The application layer's own indicator module (platform-wide indicators).
PLATFORM_INDICATORS = "its.app.reports.platform"


def indicator_modules() -> list[str]:
    """Modules whose public functions (other than readers and ``section``) define indicators:
    every registered domain's report sections' modules, then the platform's."""
    names = [m for s in report_sections() for m in s.indicator_modules]
    return [*names, PLATFORM_INDICATORS]
_NOT_INDICATORS = ("section", "paid_units")


def indicator_functions() -> list[Callable[..., Any]]:
    """Every indicator function, module by module, in ``__all__`` order."""
    out = []
    for name in indicator_modules():
        module = importlib.import_module(name)
        for attr in getattr(module, "__all__", []):
            fn = getattr(module, attr)
            if callable(fn) and not isinstance(fn, type) and attr not in _NOT_INDICATORS \
                    and not attr.startswith("read_"):
                out.append(fn)
    return out


def glossary_markdown() -> str:
    """A Markdown table: indicator function and its definition (units and formula)."""
    lines = ["| indicator | definition |", "|---|---|"]
    for fn in indicator_functions():
        text = (definition(fn) or "").replace("|", "\\|")
        lines.append(f"| `{fn.__module__}.{fn.__name__}` | {text} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(glossary_markdown(), end="")
