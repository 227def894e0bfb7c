"""Parking guidance: where a driver arriving in a few minutes is most likely to find a space.

Pure logic shared by the live route (``GET /v1/parking/guidance``), the sign texts published on
:data:`GUIDANCE_TOPIC` and the replay evaluation (:mod:`parking.evaluate_guidance`).

Probability of a free space on arrival. The forecast of a site is available at +15, +30 and
+60 min from its last reading, each with the quantiles of that site's past errors at that
horizon (:mod:`parking.forecast`). The arrival is ``age + arrive_in_min`` after that reading;
occupancy and error quantiles are interpolated linearly between the horizons, with the reading
itself (no error) at 0 min and the +60 min forecast held beyond 60 min. Assumption: the
occupancy on arrival is the forecast plus an error distributed as the site's past errors at
that horizon, whatever the level (:func:`parking.blend.free_probability`); the arrivals of
the drivers guided are not modelled.

Ranking: by that probability rounded to ``step`` (so that sites almost equally likely to have
space are told apart by distance), then by distance, then by expected free spaces. Sites
without a forecast come after all sites with one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from its.domain import Field, Topic
from parking.blend import LEVELS, free_probability

__all__ = [
    "GUIDANCE_TOPIC",
    "Alternative",
    "Recommendation",
    "arrival_forecast",
    "guidance_topic",
    "rank",
    "sign_message",
]

#: Retained MQTT topic of the variable-message-sign text of a site (JSON, see :func:`sign_message`).
GUIDANCE_TOPIC = Topic(
    filter="its/v1/parking/guidance/+",
    summary="The variable-message-sign text of a site: its state and where drivers are sent instead (retained).",
    publisher="the platform (`its serve`)",
    fields=(Field("site_id", "string", "the sign's site"),
            Field("status", "string", "the site's status"),
            Field("active", "bool", "whether the sign sends drivers elsewhere (full or nearly full)"),
            Field("lines", "list of string", "the sign's text lines"),
            Field("text", "string", "the lines joined with ' / '"),
            Field("alternatives", "list", "site_id, name, distance_m (m), probability (0-1), expected_free (spaces)"),
            Field("arrive_in_min", "float, min", "drive time assumed for the alternatives"),
            Field("generated_at", "ISO 8601", "when the text was computed")),
    retained=True, from_platform=True)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def guidance_topic(site_id: str) -> str:
    """The sign-text topic of a site."""
    return GUIDANCE_TOPIC.concrete(site_id)


def arrival_forecast(
    horizons: Sequence[int], occupied_now: FloatArray, predicted: FloatArray, errors: FloatArray,
    capacity: FloatArray, after_min: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Forecast occupancy and chance of a free space ``after_min`` minutes after each reading.

    Parameters
    ----------
    horizons : sequence of int
        Forecast horizons (min), increasing.
    occupied_now : ndarray, shape (N,)
        Occupancy of the reading (spaces).
    predicted : ndarray, shape (N, H)
        Forecast occupancy at each horizon (spaces); NaN where none.
    errors : ndarray, shape (N, H, len(LEVELS))
        Error quantiles at each horizon (spaces); NaN where none.
    capacity : ndarray, shape (N,)
        Capacity (spaces).
    after_min : ndarray, shape (N,)
        Time from the reading to the arrival (min), >= 0.

    Returns
    -------
    occupied, probability : ndarray, shape (N,)
        Occupancy expected on arrival (spaces) and the chance that at least one space is free
        then; NaN where a forecast needed is missing.
    """
    n = occupied_now.shape[0]
    knots = np.array([0.0, *horizons])
    pred = np.concatenate([occupied_now[:, None], predicted], axis=1)
    errs = np.concatenate([np.zeros((n, 1, LEVELS.size)), errors], axis=1)
    t = np.clip(after_min, 0.0, knots[-1])
    hi = np.clip(np.searchsorted(knots, t, side="left"), 1, knots.size - 1)
    lo = hi - 1
    frac = ((t - knots[lo]) / (knots[hi] - knots[lo]))
    rows = np.arange(n)
    occupied = (1 - frac) * pred[rows, lo] + frac * pred[rows, hi]
    occupied = np.where(frac == 0, pred[rows, lo], np.where(frac == 1, pred[rows, hi], occupied))
    err = (1 - frac)[:, None] * errs[rows, lo] + frac[:, None] * errs[rows, hi]
    err = np.where((frac == 0)[:, None], errs[rows, lo], np.where((frac == 1)[:, None], errs[rows, hi], err))
    occupied = np.clip(occupied, 0.0, capacity)
    return occupied, free_probability(occupied, capacity, err)


def rank(probability: FloatArray, distance_m: FloatArray, expected_free: FloatArray, step: float) -> IntArray:
    """Order of candidates: rounded probability (descending), distance, expected free spaces.

    Parameters
    ----------
    probability : ndarray, shape (N,)
        Chance of a free space on arrival; NaN (no forecast) ranks last.
    distance_m : ndarray, shape (N,)
        Distance from the request (m).
    expected_free : ndarray, shape (N,)
        Free spaces expected on arrival (spaces).
    step : float
        Probability resolution of the ranking (e.g. 0.05).
    """
    p_key = np.where(np.isnan(probability), np.inf, -np.round(np.nan_to_num(probability) / step))
    free_key = -np.nan_to_num(expected_free, nan=-np.inf)
    order = np.lexsort((np.arange(probability.size), free_key, distance_m, p_key))
    return order.astype(np.int64)


@dataclass(frozen=True)
class Recommendation:
    """A ranked site of a guidance answer.

    Attributes
    ----------
    distance_m : float
        From the request point (m).
    status : str
        DATEX II status now.
    free_now : int
        Free spaces now (spaces).
    observed_at : datetime or None
        Time of the reading the forecast starts from (UTC).
    expected_free : int
        Free spaces expected on arrival (spaces); the current ones without a forecast.
    probability : float or None
        Chance of at least one free space on arrival; None without a forecast (``reason``).
    """

    site_id: str
    name: str
    lat: float
    lon: float
    distance_m: float
    status: str
    free_now: int
    observed_at: datetime | None
    expected_free: int
    probability: float | None
    reason: str | None = None


@dataclass(frozen=True)
class Alternative:
    """A site a sign sends drivers to."""

    site_id: str
    name: str
    distance_m: float
    probability: float
    expected_free: int


_STATUS_WORDS = {"full": "FULL", "almostFull": "NEARLY FULL"}


def sign_message(site_id: str, name: str, status: str, alternatives: Sequence[Alternative],
                 generated_at: str, arrive_in_min: float) -> dict[str, object]:
    """The sign text of a site: its state and, when full or nearly full, where to go instead.

    Returns
    -------
    dict
        JSON-ready payload: ``site_id``, ``status`` (DATEX II), ``active`` (the sign shows a
        diversion), ``lines`` (the sign's lines), ``text`` (the lines joined by `` / ``),
        ``alternatives`` (``site_id, name, distance_m, probability, expected_free``),
        ``arrive_in_min`` (drive time assumed, min), ``generated_at`` (ISO 8601).
    """
    active = status in _STATUS_WORDS
    lines: list[str] = []
    if active:
        lines.append(f"{name} {_STATUS_WORDS[status]}")
        for alt in alternatives:
            km = alt.distance_m / 1000.0
            lines.append(f"-> {alt.name} {km:.1f} km" if alt.distance_m > 0 else f"-> {alt.name}")
        if not alternatives:
            lines.append("NO ALTERNATIVE NEARBY")
    return {
        "site_id": site_id,
        "status": status,
        "active": active,
        "lines": lines,
        "text": " / ".join(lines),
        "alternatives": [
            {"site_id": a.site_id, "name": a.name, "distance_m": round(a.distance_m, 1),
             "probability": round(a.probability, 3), "expected_free": a.expected_free}
            for a in (alternatives if active else ())
        ],
        "arrive_in_min": arrive_in_min,
        "generated_at": generated_at,
    }
