"""Thresholds and tuning of the congestion estimator (env prefix ``ITS_TRAFFIC_``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["TrafficSettings"]


class TrafficSettings(BaseSettings):
    """Congestion levels, estimator constants, probe and incident thresholds."""

    model_config = SettingsConfigDict(env_prefix="ITS_TRAFFIC_", extra="ignore")

    # --- levels: speed / free-flow speed -------------------------------------------------
    level_free_ratio: float = Field(
        default=0.75, description="Speed ratio to free flow (0..1) at or above which an edge is `free`.")
    level_moderate_ratio: float = Field(
        default=0.5, description="Speed ratio at or above which an edge is `moderate` (below `free`).")
    level_heavy_ratio: float = Field(
        default=0.25, description="Speed ratio at or above which an edge is `heavy`; below it `jammed`.")

    # --- estimator -------------------------------------------------------------------------
    memory: int = Field(default=4, ge=1, le=32, description=(
        "Observations kept per edge (count); the edge's own level is their median."))
    max_age_s: float = Field(default=3600.0, gt=0, description=(
        "Observations older than this (s) are ignored by the estimator."))
    own_decay_s: float = Field(default=3000.0, gt=0, description=(
        "e-folding time (s) of the weight of an edge's own last observation."))
    full_weight: float = Field(default=1.0, gt=0, description=(
        "Observation weight (probe vehicles or equivalent) that gives full own confidence."))
    smoothing: float = Field(default=0.003, ge=0, description=(
        "Graph smoothing strength (dimensionless) of deviations between neighbouring edges."))
    shrinkage: float = Field(default=0.001, gt=0, description=(
        "Pull (dimensionless) of the deviation towards the historical profile where evidence is weak."))
    solver_tol: float = Field(default=1e-4, gt=0, description="Relative tolerance of the conjugate-gradient solve.")
    solver_max_iter: int = Field(default=200, ge=1, description="Maximum conjugate-gradient iterations per update.")
    min_speed_mps: float = Field(default=0.5, gt=0, description="Lowest speed an estimate may take (m/s).")
    max_speed_ratio: float = Field(default=1.3, gt=1, description="Highest estimate as a multiple of free-flow speed.")
    class_similarity: float = Field(default=0.3, ge=0, le=1, description=(
        "Line-graph weight factor (0..1) between consecutive edges of different road classes."))
    neighbour_scale_m: float = Field(default=500.0, gt=0, description=(
        "Distance scale (m) of line-graph weights: exp(-mean length of the two edges / scale)."))
    profile_slot_s: int = Field(default=900, gt=0, description="Width (s) of a time-of-day slot of the historical profile.")

    # --- probes ------------------------------------------------------------------------------
    probe_radius_m: float = Field(default=60.0, gt=0, description="Search radius (m) for candidate edges of an AVL ping.")
    probe_sigma_m: float = Field(default=20.0, gt=0, description="GPS error scale (m) of the map-matching emission score.")
    probe_dwell_speed_mps: float = Field(default=1.5, ge=0, description=(
        "Mean speed (m/s) between pings below which the interval is dwell (stop/terminal) and ignored."))
    probe_max_gap_s: float = Field(default=180.0, gt=0, description="Longest ping gap (s) still matched as one movement.")
    probe_min_interval_s: float = Field(default=5.0, ge=0, description=(
        "Ping intervals shorter than this (s) give no speed (GPS noise dominates)."))
    probe_max_speed_mps: float = Field(default=40.0, gt=0, description="Implausible probe speeds (m/s) above this are dropped.")

    # --- flows -------------------------------------------------------------------------------
    bpr_alpha: float = Field(default=0.15, ge=0, description="BPR alpha: t = t0 (1 + alpha (v/c)^beta).")
    bpr_beta: float = Field(default=4.0, gt=0, description="BPR beta exponent.")
    flow_weight: float = Field(default=0.5, ge=0, description=(
        "Weight (probe-equivalents) of one camera-count interval as speed evidence."))

    # --- incidents ---------------------------------------------------------------------------
    incident_ratio: float = Field(default=0.5, gt=0, lt=1, description=(
        "An edge is an incident candidate when its estimate is below this fraction of its usual speed."))
    incident_min_confidence: float = Field(default=0.5, ge=0, le=1, description=(
        "Minimum share (0..1) of direct probe/flow evidence in an edge estimate for an incident candidate."))
    incident_max_alerts: int = Field(default=20, ge=0, description=(
        "Most incident alerts raised at once (corridors first, then the slowest edges)."))
    network: str = Field(default="", description=(
        "Stored road network (maps import name) the live service estimates on; empty: the first stored."))
    history_days: int = Field(default=28, ge=1, description="Days of stored probe speeds forming the historical profile.")
    probe_bin_s: int = Field(default=300, gt=0, description="Time bin (s) of stored per-edge probe observations.")
    update_interval_s: float = Field(default=30.0, gt=0, description="Period (s) of the live service's estimate update.")
    tti_group_sample_s: float = Field(default=300.0, ge=0, description=(
        "Period (s) at which every area's and corridor's travel time index is stored for the history route "
        "(the network's is stored at every update)."))
