"""Counting on the real freeway clips: stability under frame skipping, CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import Result
from typer.testing import CliRunner

from its.app.cli import app
from video.evaluate import count_source, parse_line, segment_in_frame

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


# --- hostile sources a new city could hand us: a clear error naming the file, or a sound run ---

def _frames(clip: Path, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < n:
        ok, image = cap.read()
        if not ok:
            break
        frames.append(image)
    cap.release()
    return frames


def _write_clip(path: Path, frames: list[np.ndarray], size: tuple[int, int], color: bool = True) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, size, color)
    for image in frames:
        writer.write(cv2.resize(image, size) if color else cv2.cvtColor(cv2.resize(image, size), cv2.COLOR_BGR2GRAY))
    writer.release()
    return path


def _eval(*args: str) -> Result:
    return CliRunner().invoke(app, ["eval", "video", *args])


def test_unreadable_sources_are_refused_with_their_name(tmp_path: Path) -> None:
    (tmp_path / "zero.avi").write_bytes(b"")
    (tmp_path / "text.avi").write_text("not a video\n" * 50)
    (tmp_path / "empty").mkdir()
    for source, message in (("missing.avi", "video file not found"), ("zero.avi", "zero.avi: empty file"),
                            ("text.avi", "cannot open video source"), ("empty", "no images")):
        result = _eval("--source", str(tmp_path / source), "--line", "20,150,300,150")
        assert result.exit_code == 2 and message in result.output and source in result.output, result.output
    bad_archive = _eval("--cdnet", str(tmp_path / "text.avi"))
    assert bad_archive.exit_code == 2 and "text.avi: not a readable tar archive" in bad_archive.output
    assert len(bad_archive.output.strip().splitlines()) == 1  # one line, not tarfile's four
    for line in ("nan,150,300,150", "20,inf,300,150"):
        result = _eval("--source", str(tmp_path / "zero.avi"), "--line", line)
        assert result.exit_code == 2 and "finite" in result.output


def test_odd_sources_run_or_name_the_problem(clip2: Path, tmp_path: Path) -> None:
    frames = _frames(clip2, 60)
    one = count_source(_write_clip(tmp_path / "one.avi", frames[:1], (320, 240)), [parse_line("20,150,300,150")])
    assert one["frames"] == 1 and one["counts"]["line-0"]["in"] == 0
    line = [parse_line("20,150,300,150")]
    colour = count_source(_write_clip(tmp_path / "colour.avi", frames, (320, 240)), line)
    grey = count_source(_write_clip(tmp_path / "grey.avi", frames, (320, 240), color=False), line)
    assert grey["frames"] == colour["frames"] == 60
    assert grey["counts"]["line-0"]["out"] == colour["counts"]["line-0"]["out"]  # colour is not needed
    odd = _write_clip(tmp_path / "odd.avi", frames, (334, 198))
    assert count_source(odd, [parse_line("20,120,310,120")])["frames"] == 60
    with pytest.raises(ValueError, match=r"odd\.avi: line line-0 \(20,250\)-\(300,250\) lies outside the 334x198 frame"):
        count_source(odd, [parse_line("20,250,300,250")])
    big = _write_clip(tmp_path / "big.avi", frames[:20], (1920, 1080))
    assert count_source(big, [parse_line("100,900,1800,900")])["frames"] == 20
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, image in enumerate(frames[:6]):
        cv2.imwrite(str(mixed / f"f{i:02d}.jpg"), image if i < 3 else cv2.resize(image, (640, 480)))
    result = _eval("--source", str(mixed), "--line", "20,150,300,150")
    assert result.exit_code == 2 and "frame 4 is 640x480, the first frame 320x240" in result.output, result.output


def test_segment_in_frame() -> None:
    assert segment_in_frame((20, 150, 300, 150), (320, 240))
    assert segment_in_frame((-50, 100, 400, 100), (320, 240))  # crosses the frame, ends outside
    assert not segment_in_frame((20, 250, 300, 250), (320, 240))
    assert not segment_in_frame((400, 0, 500, 240), (320, 240))
