from __future__ import annotations

from pathlib import Path

import pytest

from video.config import CameraConfigError, VideoSettings, load_cameras

EXAMPLE = Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml"


def test_example_config_points_at_real_clips(shared_data: Path) -> None:
    cams = load_cameras(EXAMPLE)
    assert [c.id for c in cams.cameras] == ["freeway-1", "freeway-2"]
    assert all(Path(c.source).is_file() for c in cams.cameras)
    cfg = cams.cameras[0].pipeline_config(VideoSettings(model_width=200))
    assert cfg.foreground.model_width == 200 and cfg.perspective is not None
    assert [s.line_id for s in cfg.lines] == ["lanes-150", "lanes-100"]
    assert cfg.speed_traps[0].distance_m == 25
    roi = cams.cameras[0].roi_mask((240, 320))
    assert roi is not None and roi.mean() > 250


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    return path


def test_errors_name_the_camera_and_the_field(tmp_path: Path) -> None:
    path = _write(tmp_path, """
cameras:
  - id: good
    source: a.avi
    lines: [{id: l1, points: [0, 10, 100, 10]}]
  - id: gate-north
    source: b.avi
    lines: [{id: l1, points: [0, 10, 100]}]
    calibration: {speed_traps: [{first_line: l1, second_line: l9, distance_m: 10}]}
  - id: gate-south
    source: c.avi
    stride: 0
    lines: [{id: l1, points: [5, 5, 5, 5]}]
""")
    with pytest.raises(CameraConfigError) as err:
        load_cameras(path)
    text = str(err.value)
    assert "camera 'gate-north' (cameras[1]) field lines[0].points" in text
    assert "camera 'gate-south' (cameras[2]) field stride" in text
    assert "camera 'gate-south' (cameras[2]) field lines[0].points" in text and "coincide" in text
    assert "'good'" not in text and str(path) in text


def test_other_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraConfigError, match="file not found"):
        load_cameras(tmp_path / "missing.yaml")
    with pytest.raises(CameraConfigError, match="invalid YAML"):
        load_cameras(_write(tmp_path, "cameras: [\n"))
    with pytest.raises(CameraConfigError, match=r"camera 'x' \(cameras\[1\]\) field id: duplicate"):
        load_cameras(_write(tmp_path, "cameras:\n" + "  - {id: x, source: a.avi, lines: [{id: l, points: [0, 0, 1, 1]}]}\n" * 2))
    with pytest.raises(CameraConfigError, match=r"camera 'y' \(cameras\[0\]\) field speed: Extra inputs"):
        load_cameras(_write(tmp_path, "cameras:\n  - {id: y, source: a.avi, speed: 3, lines: [{id: l, points: [0, 0, 1, 1]}]}\n"))
