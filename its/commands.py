"""What every command-line command needs, whichever layer defines it.

Domain CLIs (``<pkg>/cli.py``) and the application CLI (:mod:`its.app.cli`) share these
helpers; they live in the kernel so that no domain imports the application layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer

from its.db import Database
from its.runtime import open_database
from its.settings import Settings, SettingsError, get_settings

__all__ = ["open_database", "platform_db", "settings_or_exit"]


def settings_or_exit() -> Settings:
    """The platform settings; a bad ``ITS_*`` variable prints why and exits with code 2."""
    try:
        return get_settings()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


@contextmanager
def platform_db(settings: Settings) -> Iterator[Database]:
    """A migrated database for one admin command; closed (and embedded servers stopped) after.

    A ``ValueError`` from the command becomes ``error: ...`` on stderr and exit code 2.
    """
    rt, db = open_database(settings)
    try:
        yield db
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.close()
        rt.stop()
