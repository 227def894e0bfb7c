"""Prometheus metrics of the platform processes (one registry per process)."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

__all__ = [
    "BATCH_SECONDS",
    "ESTIMATOR_SECONDS",
    "INGEST_LAG",
    "QUEUE_DEPTH",
    "RECEIVED",
    "REJECTED",
    "ROWS_INSERTED",
    "SPOOLED",
    "STORED",
    "serve_metrics",
]

RECEIVED = Counter("its_messages_received_total", "MQTT messages received by collectors", ["feed"])
STORED = Counter("its_messages_stored_total", "Messages whose rows were committed", ["feed"])
REJECTED = Counter("its_messages_rejected_total",
                   "Messages dead-lettered to rejected_messages, by kind of reason (its.dead_letters.REASON_CLASSES)",
                   ["feed", "reason"])
ROWS_INSERTED = Counter("its_rows_inserted_total", "New rows inserted (duplicates excluded)", ["table"])
BATCH_SECONDS = Histogram(
    "its_collector_batch_seconds", "Time to commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("its_collector_queue_depth", "Messages received but not yet committed")
SPOOLED = Gauge("its_collector_spool_messages", "Messages held in the local spool while the database is away")
INGEST_LAG = Histogram(
    "its_ingest_lag_seconds", "Seconds from a message's receipt to the commit of its batch (oldest of the batch)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)

HTTP_REQUESTS = Counter("its_http_requests_total", "HTTP requests answered", ["route", "status"])
HTTP_SECONDS = Histogram(
    "its_http_request_seconds", "HTTP request latency", ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)

ESTIMATOR_SECONDS = Histogram(
    "its_estimator_update_seconds", "Time of one update of a live estimator (traffic: every ITS_TRAFFIC_UPDATE_INTERVAL_S)",
    ["estimator"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

def serve_metrics(port: int | None, host: str = "0.0.0.0") -> bool:
    """Expose this process's metrics at ``http://host:port/metrics`` (a daemon thread).

    For processes without an API of their own (collectors, camera workers): each sets its own
    ``ITS_METRICS_PORT``. Returns whether a server was started (``port`` None: none).
    """
    if port is None:
        return False
    start_http_server(port, addr=host)
    logging.getLogger(__name__).info("metrics at http://%s:%d/metrics", host, port)
    return True
