"""Per-cell features of the people counter on real Mall frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from video.people_data import load_annotated, read_roi
from video.people_features import (
    FEATURES,
    Background,
    CellGrid,
    FeatureExtractor,
    PeopleConfig,
    cell_design,
    to_grey,
)


def test_grid_geometry_heads_and_polygons() -> None:
    grid = CellGrid.for_frame((640, 480), PeopleConfig())
    assert (grid.cols, grid.rows, grid.model_size) == (20, 15, (320, 240))
    heads = np.array([[0.0, 0.0], [639.9, 479.9], [33.0, 31.0], [30.0, 40.0], [700.0, -5.0]])
    cells = grid.heads_to_cells(heads)
    assert cells.sum() == len(heads)  # heads outside the frame go to the border cells
    # cells are 32 frame pixels wide (16 model pixels at half resolution)
    assert cells[0, 0] == 1 and cells[0, 1] == 1 and cells[1, 0] == 1 and cells[14, 19] == 1 and cells[0, 19] == 1
    whole = grid.polygon_weights([(0, 0), (640, 0), (640, 480), (0, 480)])
    left = grid.polygon_weights([(0, 0), (320, 0), (320, 480), (0, 480)])
    assert np.allclose(whole, 1.0, atol=0.01)
    assert np.allclose(left[:, :10], 1.0, atol=0.01) and np.allclose(left[:, 10:], 0.0, atol=0.01)
    odd = CellGrid.for_frame((352, 288), PeopleConfig())
    assert odd.model_size == (320, 256)  # the height is rounded to whole cells


def test_features_see_people_and_respect_the_roi(mall: Path) -> None:
    frames = load_annotated(mall / "frames.tar", mall / "counts.csv", mall / "heads.csv", (1, 60))
    config = PeopleConfig()
    grid = CellGrid.for_frame((640, 480), config)
    greys = np.stack([to_grey(frames.decode(i), grid) for i in range(len(frames))])
    roi_full = read_roi(mall / "roi.png")
    assert roi_full is not None
    roi = grid.cell_means(roi_full) > 0
    mask = np.asarray(np.kron(roi, np.ones((16, 16))) > 0)
    ext = FeatureExtractor(config, grid, Background.estimate(greys), mask)
    feats = np.stack([ext(g) for g in greys])
    assert feats.shape == (60, 15, 20, len(FEATURES))
    assert np.all(feats[:, ~roi] == 0.0) and np.all(feats >= 0)
    fractions = [i for i, name in enumerate(FEATURES) if not name.startswith("grad")]
    assert np.all(feats[..., fractions] <= 1.0 + 1e-5)
    lbp = [FEATURES.index(f"lbp_{k}") for k in range(10)]
    full_cells = grid.cell_means(roi_full) == 1.0
    assert np.allclose(feats[:, full_cells][..., lbp].sum(-1), 1.0, atol=1e-4)  # a histogram
    # cells holding annotated heads show more foreground than empty cells (real people move)
    heads = np.stack([grid.heads_to_cells(h) for h in frames.heads or []])
    fg = feats[..., FEATURES.index("fg")]
    occupied, empty = (heads > 0) & roi, (heads == 0) & roi
    assert fg[occupied].mean() > 2.0 * fg[empty].mean()
    design = cell_design(feats[:2], grid.cell_means(roi_full))
    assert design.shape == (2, 15, 20, 4 * len(FEATURES) + 3)
    assert np.allclose(design[0, 3, 4, 2 * len(FEATURES):3 * len(FEATURES)], feats[0, 4, 4])  # the cell below
    assert design[0, 7, 9, -3:].tolist()[:2] == [7.0, 9.0]
    with pytest.raises(ValueError, match="320x240"):
        to_grey(np.zeros((240, 320, 3), np.uint8), grid)


def test_background_is_median_and_spread() -> None:
    rng = np.random.default_rng(0)
    stack = np.full((21, 8, 8), 100, np.uint8)
    stack[::2] += rng.integers(0, 3, size=(11, 8, 8)).astype(np.uint8)
    stack[5, 2, 2] = 250  # a passer-by does not move the median
    bg = Background.estimate(stack)
    assert bg.median.shape == (8, 8) and bg.median.min() >= 100 and bg.median.max() <= 102
    assert bg.spread.max() <= 2
    with pytest.raises(ValueError):
        Background.estimate(np.zeros((0, 4, 4), np.uint8))

