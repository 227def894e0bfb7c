# The platform image: every `its` service of docker-compose.yml (api, collector, video, migrate,
# demo-feed, simulator) runs from it, as the unprivileged user `its` (uid 10001).

# --- build: wheels, and the demo city's GTFS (Cairns) from gtfs-kit's sdist on PyPI, fetched
# exactly as `its demo` does (its.app.demo.cairns_feed); never committed to the repository
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY its ./its
COPY maps ./maps
COPY telematics ./telematics
COPY parking ./parking
COPY video ./video
COPY traffic ./traffic
RUN pip wheel --no-cache-dir --wheel-dir /wheels . \
 && pip install --no-cache-dir /wheels/*.whl \
 && python -c "from pathlib import Path; from its.app.demo import cairns_feed; cairns_feed(Path('/demo'))"

# --- runtime
FROM python:3.11-slim
# libgomp1: LightGBM; libglib2.0-0: OpenCV
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 its \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/its --shell /usr/sbin/nologin its \
 && mkdir -p /var/lib/its /opt/its/demo \
 && chown its:its /var/lib/its
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY --from=build /demo/cairns_gtfs.zip /opt/its/demo/cairns_gtfs.zip
ENV ITS_DATA_DIR=/var/lib/its PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/its
EXPOSE 8000 9100 9101
CMD ["its", "serve", "--host", "0.0.0.0", "--port", "8000"]
