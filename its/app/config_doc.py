"""The configuration table of the README, generated from every settings class."""

from __future__ import annotations

from pydantic_settings import BaseSettings

from its.app.registry import domains
from its.report_settings import ReportSettings
from its.settings import Settings

__all__ = ["settings_classes", "settings_table"]


def settings_classes() -> list[tuple[str, type[BaseSettings]]]:
    """(env prefix, class) for the platform settings and each registered domain's settings."""
    out: list[tuple[str, type[BaseSettings]]] = [("ITS_", Settings), ("ITS_REPORTS_", ReportSettings)]
    for domain in domains():
        for cls in domain.settings or ():
            out.append((str(cls.model_config.get("env_prefix", "")), cls))
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
