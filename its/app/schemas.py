"""Response models of the ops routes (``/healthz``, ``/readyz``): documentation of the JSON the
app sends (the routes build it themselves; nothing is validated per request)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["Health", "Readiness"]


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = Field(description="Always `ok`.")


class Readiness(BaseModel):
    """Readiness: 200 with ``ready: true`` when every check passes, else 503 with the same body."""

    ready: bool = Field(description="Every check passed.")
    checks: dict[str, bool] = Field(
        description="`database`, `broker` and `service:<name>` per mounted domain service: true when reachable "
                    "or its state is rebuilt.")
    broker_kind: str | None = Field(None, description="`external`, `mosquitto` (embedded) or `amqtt` (fallback).")
    warning: str | None = Field(None, description="Present on the `amqtt` fallback broker: why not to use it in production.")
    errors: dict[str, str] | None = Field(None, description="Service name → the error that stopped its start.")
