"""Counting on the real freeway clips: stability under frame skipping, CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from its.app.cli import app
from video.evaluate import count_source, parse_line

LINES = {
    "haar_video1.avi": ["30,150,300,150", "30,100,300,100"],
    "haar_video2.avi": ["30,150,300,150", "30,120,300,120"],
}


@pytest.mark.parametrize("name", sorted(LINES))
def test_counts_are_stable_under_frame_skipping(request: pytest.FixtureRequest, name: str) -> None:
    clip = request.getfixturevalue({"haar_video1.avi": "clip1", "haar_video2.avi": "clip2"}[name])
    lines = [parse_line(text, i) for i, text in enumerate(LINES[name])]
    full = count_source(clip, lines)
    half = count_source(clip, lines, stride=2)
    assert half["frames"] == (full["frames"] + 1) // 2
    for line_id, c in full["counts"].items():
        n_full = c["in"] + c["out"]
        n_half = half["counts"][line_id]["in"] + half["counts"][line_id]["out"]
        assert n_full >= 20  # busy freeways: tens of vehicles in 30 s
        assert abs(n_half - n_full) <= max(2, 0.12 * n_full), (line_id, n_full, n_half)


def test_parse_line_errors() -> None:
    assert parse_line("1,2,3,4", 2).line_id == "line-2"
    for bad in ["1,2,3", "a,b,c,d", "1,1,1,1"]:
        with pytest.raises(ValueError, match="--line"):
            parse_line(bad)


def test_eval_video_cli_prints_json_last_line(clip2: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "video", "--source", str(clip2), "--line", "30,150,300,150", "--stride", "3", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert set(out) == {"frames", "fps", "counts"} and out["frames"] == 250
    c = out["counts"]["line-0"]
    assert c["in"] + c["out"] >= 15 and sum(v["in"] + v["out"] for v in c["by_class"].values()) == c["in"] + c["out"]
    bad = CliRunner().invoke(app, ["eval", "video", "--source", str(clip2), "--line", "1,2,3"])
    assert bad.exit_code == 2 and "expected four numbers" in bad.output
