"""``python -m its.app.bench.bare PORT BYTES``: the bare baseline, a minimal FastAPI JSON endpoint.

It answers ``GET /bare`` with a precomputed JSON document of about BYTES bytes, through the
same server (uvicorn) and framework as the platform, with no auth, state or logic.
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response


def bare_app(size: int) -> FastAPI:
    item = {"id": "stop-0000", "name": "A stop name", "lat": -16.92, "lon": 145.77, "value": 12.5}
    per = len(str(item)) + 2
    body: dict[str, object] = {"items": [dict(item, id=f"stop-{i:04d}") for i in range(max(1, size // per))]}
    app = FastAPI()

    @app.get("/bare")
    def bare() -> dict[str, object]:
        return body

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok")

    return app


if __name__ == "__main__":
    uvicorn.run(bare_app(int(sys.argv[2])), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
