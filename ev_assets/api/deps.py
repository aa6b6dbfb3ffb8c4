"""FastAPI dependencies shared by every router of the service.

`create_app` puts the settings and the marts snapshot reader on `app.state`; routers get them from here so a
test can build an app on its own data root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from ev_assets.lib.settings import Settings

if TYPE_CHECKING:  # the snapshot module imports duckdb: only needed by the routers that read the marts
    from ev_assets.lib import snapshot


def get_settings(request: Request) -> Settings:
    """The settings of the running app (`app.state.settings`)."""
    return request.app.state.settings


def get_snapshot(request: Request) -> "snapshot.Reader":
    """The read-only reader of the current marts snapshot (`app.state.snapshot`)."""
    return request.app.state.snapshot


def get_champions(request: Request):
    """The model store (`ev_assets.lib.ml.champions.ChampionStore`) of the running app."""
    return request.app.state.champions
