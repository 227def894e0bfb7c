"""Prediction-accuracy windows (pure constants, shared by the predictor and the indicators).

The MBTA windows (MBTA, "Performance measures: prediction accuracy"): a prediction made
``horizon`` ahead is accurate when ``actual - predicted`` lies in the band's allowed range.
`telematics.kpi` scores with them; `telematics.downstream` shades the served arrival by
their asymmetry.
"""

from __future__ import annotations

__all__ = ["MBTA_WINDOWS"]

#: MBTA prediction-accuracy windows: (horizon from s, horizon to s, allowed error low s, high s).
MBTA_WINDOWS: tuple[tuple[float, float, float, float], ...] = (
    (0, 180, -60, 60), (180, 360, -90, 120), (360, 720, -150, 210), (720, 1800, -240, 360))
