"""The configuration table of the README, generated from every settings class."""

from __future__ import annotations

import importlib

from pydantic_settings import BaseSettings

from its.settings import Settings

__all__ = ["settings_classes", "settings_table"]


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    """(env prefix, class) for the platform settings and each domain's ``config`` module."""
    from its.reports.config import ReportSettings

    out: list[tuple[str, type[BaseSettings]]] = [("ITS_", Settings), ("ITS_REPORTS_", ReportSettings)]
    for pkg in ("maps", "telematics", "parking", "video", "traffic"):
        try:
            mod = importlib.import_module(f"{pkg}.config")
        except ModuleNotFoundError as exc:
            if exc.name == f"{pkg}.config":
                continue
            raise
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, BaseSettings) and obj is not BaseSettings and obj.__module__ == mod.__name__:
                out.append((str(obj.model_config.get("env_prefix", "")), obj))
    return out


def settings_table(markdown: bool = True) -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"] if markdown else []
    for prefix, cls in settings_classes():
        for name, field in cls.model_fields.items():
            default = field.get_default(call_default_factory=False) if field.default_factory is None else "(computed)"
            if name == "data_dir":
                default = "~/.local/share/its"
            var = f"{prefix}{name.upper()}"
            desc = (field.description or "").replace("|", "\\|")
            shown = "unset" if default is None else f"`{default}`"
            lines.append(f"| `{var}` | {shown} | {desc} |" if markdown else f"{var}={'' if default is None else default}  # {desc}")
    return "\n".join(lines)
