"""Multi-object tracking by optimal assignment with constant-velocity prediction.

Each frame, every live track predicts its centroid from its velocity; the cost of pairing
track *i* with detection *j* is the predicted-centroid distance divided by the track's gate
plus a size-change penalty, pairs beyond the gate are forbidden, and
:func:`scipy.optimize.linear_sum_assignment` picks the pairing. Unmatched tracks coast on
their velocity for up to ``max_coast_s`` seconds (brief occlusions, merged blobs), so one
vehicle keeps one id. Time is in seconds, which keeps the tracker stable under frame
skipping.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from video.detections import Detections

__all__ = ["Tracker", "TrackerConfig"]

Float = npt.NDArray[np.float64]
Int = npt.NDArray[np.int64]
_FORBIDDEN = 1e6


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker settings.

    Attributes
    ----------
    gate_factor : float
        A detection may join a track if its centroid lies within ``gate_factor`` ×
        sqrt(track area) of the prediction (unitless).
    min_gate : float
        Lower bound of the gate radius, pixels.
    speed_gate_s : float
        The gate also grows by the track's speed × this many seconds (fast vehicles, skipped
        frames), s.
    size_weight : float
        Cost weight of ``|log(area_det / area_track)|`` (unitless).
    velocity_smoothing : float
        Weight of the new velocity measurement in the exponential filter, 0..1.
    max_coast_s : float
        Unmatched tracks survive this long on predicted motion, s.
    n_classes : int
        Number of vehicle classes voted on per track.
    flow_cell : float
        Cell size of the learned motion prior, pixels (0 disables it). Each cell keeps the
        mean velocity of established tracks that passed through it; a new track starts with
        its cell's mean velocity instead of zero, so fast vehicles and skipped frames still
        associate on the second observation.
    flow_min_samples : int
        Observations a cell needs before its mean velocity is used.
    small_class : int
        Index of the smallest class (the two-wheeler, :data:`video.classify.CLASS_NAMES`),
        -1 for none. A track is given this class only when at least ``small_share`` of its
        votes are for it, otherwise the majority of its other votes: a vehicle that looked
        car-sized on more than a few of its frames is a car whose blob was cut (frame edge),
        fragmented or dark on the others, not a two-wheeler.
    small_share : float
        See ``small_class``, 0..1 (0.5 = plain majority).
    """

    gate_factor: float = 1.2
    min_gate: float = 12.0
    speed_gate_s: float = 0.25
    size_weight: float = 0.3
    velocity_smoothing: float = 0.5
    max_coast_s: float = 0.6
    n_classes: int = 3
    flow_cell: float = 24.0
    flow_min_samples: int = 3
    small_class: int = 2
    small_share: float = 0.75


class Tracker:
    """Stateful tracker: :meth:`update` takes a frame's detections, returns them with ids."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._next_id = 1
        self.ids: Int = np.zeros(0, dtype=np.int64)
        self.pos: Float = np.zeros((0, 2))  # last estimated centroid, px
        self.vel: Float = np.zeros((0, 2))  # px/s
        self.area: Float = np.zeros(0)  # px²
        self.last_seen: Float = np.zeros(0)  # s
        self.last_time: Float = np.zeros(0)  # time of pos, s
        self.hits: Int = np.zeros(0, dtype=np.int64)
        self.votes: Float = np.zeros((0, self.config.n_classes))
        self.boxes: Float = np.zeros((0, 4))
        self._flow_sum: Float = np.zeros((0, 0, 2))  # per cell, px/s summed
        self._flow_n: Float = np.zeros((0, 0))

    def __len__(self) -> int:
        return len(self.ids)

    def predicted(self, t: float) -> Float:
        """Predicted centroids of all live tracks at time ``t`` (s), pixels ``(M, 2)``."""
        dt = (t - self.last_time)[:, None]
        return np.asarray(self.pos + self.vel * dt, dtype=np.float64)

    def _cost(self, det: Detections, t: float) -> Float:
        c = self.config
        pred = self.predicted(t)
        dist = np.linalg.norm(pred[:, None, :] - det.centroid[None, :, :], axis=2)
        speed = np.linalg.norm(self.vel, axis=1)
        gate = np.maximum(c.min_gate, c.gate_factor * np.sqrt(self.area)) + speed * c.speed_gate_s
        size = np.abs(np.log(np.maximum(det.area[None, :], 1.0) / np.maximum(self.area[:, None], 1.0)))
        cost = dist / gate[:, None] + c.size_weight * size
        cost[dist > gate[:, None]] = _FORBIDDEN
        return np.asarray(cost, dtype=np.float64)

    def update(self, detections: Detections, t: float) -> Detections:
        """Associate ``detections`` observed at time ``t`` (s) with tracks.

        Returns
        -------
        Detections
            The same detections with ``tracker_id`` set and ``class_id`` replaced by the
            track's voted class (when detections carry classes; majority, but the small
            class needs ``small_share`` of the votes, see :class:`TrackerConfig`).
        """
        c = self.config
        n_det, n_trk = len(detections), len(self.ids)
        det_track = np.full(n_det, -1, dtype=np.int64)  # index into tracks
        if n_det and n_trk:
            cost = self._cost(detections, t)
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < _FORBIDDEN
            rows, cols = rows[ok], cols[ok]
            det_track[cols] = rows
            # update matched tracks
            cen = detections.centroid[cols]
            dt = np.maximum(t - self.last_seen[rows], 1e-3)[:, None]
            measured = (cen - self._observed_pos(rows)) / dt
            a = c.velocity_smoothing
            fresh = self.hits[rows] == 1  # second observation: take the measurement as is
            w = np.where(fresh, 1.0, a)[:, None]
            self.vel[rows] = w * measured + (1.0 - w) * self.vel[rows]
            self.pos[rows] = cen
            self.last_time[rows] = t
            self.last_seen[rows] = t
            self.area[rows] = detections.area[cols]
            self.boxes[rows] = detections.xyxy[cols]
            self.hits[rows] += 1
            steady = self.hits[rows] >= 3
            self._learn_flow(cen[steady], self.vel[rows][steady])
        # new tracks for unmatched detections
        new = np.flatnonzero(det_track < 0)
        if len(new):
            k = len(new)
            self.ids = np.concatenate([self.ids, np.arange(self._next_id, self._next_id + k)])
            self._next_id += k
            self.pos = np.concatenate([self.pos, detections.centroid[new]])
            self.vel = np.concatenate([self.vel, self._prior_velocity(detections.centroid[new])])
            self.area = np.concatenate([self.area, detections.area[new]])
            self.boxes = np.concatenate([self.boxes, detections.xyxy[new]])
            self.last_seen = np.concatenate([self.last_seen, np.full(k, t)])
            self.last_time = np.concatenate([self.last_time, np.full(k, t)])
            self.hits = np.concatenate([self.hits, np.ones(k, dtype=np.int64)])
            self.votes = np.concatenate([self.votes, np.zeros((k, c.n_classes))])
            det_track[new] = np.arange(n_trk, n_trk + k)
        # class votes, one per frame
        cls = detections.class_id
        voted = (cls >= 0) & (cls < c.n_classes)
        if voted.any():
            np.add.at(self.votes, (det_track[voted], cls[voted]), 1.0)
        votes = self.votes[det_track]
        out_cls = np.where(votes.sum(axis=1) > 0, self._decide(votes), cls)
        result = detections.with_(tracker_id=self.ids[det_track], class_id=out_cls)
        self._expire(t)
        return result

    def _decide(self, votes: Float) -> Int:
        """Class of each row of ``votes`` ``(M, n_classes)``: see :class:`TrackerConfig` ``small_class``."""
        c = self.config
        if not 0 <= c.small_class < c.n_classes:
            return np.asarray(votes.argmax(axis=1), dtype=np.int64)
        others = votes.copy()
        others[:, c.small_class] = -1.0
        small = votes[:, c.small_class] >= c.small_share * votes.sum(axis=1)
        return np.where(small, c.small_class, others.argmax(axis=1)).astype(np.int64)

    def _cells(self, xy: Float) -> tuple[Int, Int]:
        cell = self.config.flow_cell
        cx = np.maximum((xy[:, 0] // cell).astype(np.int64), 0)
        cy = np.maximum((xy[:, 1] // cell).astype(np.int64), 0)
        need_y, need_x = int(cy.max(initial=-1)) + 1, int(cx.max(initial=-1)) + 1
        gy, gx = self._flow_n.shape
        if need_y > gy or need_x > gx:
            ny, nx = max(gy, need_y), max(gx, need_x)
            grown_sum, grown_n = np.zeros((ny, nx, 2)), np.zeros((ny, nx))
            grown_sum[:gy, :gx], grown_n[:gy, :gx] = self._flow_sum, self._flow_n
            self._flow_sum, self._flow_n = grown_sum, grown_n
        return cy, cx

    def _learn_flow(self, xy: Float, vel: Float) -> None:
        if self.config.flow_cell <= 0 or not len(xy):
            return
        cy, cx = self._cells(xy)
        np.add.at(self._flow_sum, (cy, cx), vel)
        np.add.at(self._flow_n, (cy, cx), 1.0)

    def _prior_velocity(self, xy: Float) -> Float:
        """Mean velocity of established tracks around ``xy`` (px/s), zero where unknown.

        Uses the point's own cell when it has ``flow_min_samples`` observations, else the
        pooled 3x3 neighbourhood (entry cells at the image border are rarely crossed by
        established tracks).
        """
        if self.config.flow_cell <= 0 or not len(xy):
            return np.zeros((len(xy), 2))
        cy, cx = self._cells(xy)
        gy, gx = self._flow_n.shape
        n_sum = np.zeros(len(xy))
        v_sum = np.zeros((len(xy), 2))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = cy + dy, cx + dx
                ok = (yy >= 0) & (yy < gy) & (xx >= 0) & (xx < gx)
                yy, xx = np.clip(yy, 0, gy - 1), np.clip(xx, 0, gx - 1)
                n_sum += np.where(ok, self._flow_n[yy, xx], 0.0)
                v_sum += np.where(ok[:, None], self._flow_sum[yy, xx], 0.0)
        own_n = self._flow_n[cy, cx]
        own = self._flow_sum[cy, cx] / np.maximum(own_n, 1.0)[:, None]
        pooled = v_sum / np.maximum(n_sum, 1.0)[:, None]
        minimum = self.config.flow_min_samples
        return np.where((own_n >= minimum)[:, None], own, np.where((n_sum >= minimum)[:, None], pooled, 0.0))

    def _observed_pos(self, rows: Int) -> Float:
        """Centroid at the last real observation (undoes coasting)."""
        return self.pos[rows]

    def _expire(self, t: float) -> None:
        alive = (t - self.last_seen) <= self.config.max_coast_s
        if alive.all():
            return
        for name in ("ids", "pos", "vel", "area", "boxes", "last_seen", "last_time", "hits", "votes"):
            setattr(self, name, getattr(self, name)[alive])

    def class_of(self, track_ids: Int) -> Int:
        """Voted class of the given live track ids (-1 for unknown or expired ids)."""
        order = np.argsort(self.ids)
        idx = np.searchsorted(self.ids, track_ids, sorter=order)
        idx = np.clip(idx, 0, max(len(self.ids) - 1, 0))
        if not len(self.ids):
            return np.full(len(track_ids), -1, dtype=np.int64)
        rows = order[idx]
        found = self.ids[rows] == track_ids
        votes = self.votes[rows]
        return np.where(found & (votes.sum(axis=1) > 0), self._decide(votes), -1).astype(np.int64)
