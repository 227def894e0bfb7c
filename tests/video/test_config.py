from __future__ import annotations

from pathlib import Path

import pytest

from video.config import CameraConfigError, VideoSettings, load_cameras

EXAMPLE = Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml"


def test_example_config_points_at_real_clips() -> None:
    cams = load_cameras(EXAMPLE)
    assert [c.id for c in cams.cameras] == ["freeway-1", "freeway-2"]
    shared = EXAMPLE.parents[3] / "shared" / "data" / "video"  # the clips of the shared data beside the clone
    assert [Path(c.source).resolve() for c in cams.cameras] == [(shared / n).resolve() for n in ("haar_video2.avi", "haar_video1.avi")]
    cfg = cams.cameras[0].pipeline_config(VideoSettings(model_width=200))
    assert cfg.foreground.model_width == 200 and cfg.perspective is not None
    assert [s.line_id for s in cfg.lines] == ["lanes-150", "lanes-100"]
    assert cfg.ground is not None and not cfg.speed_traps  # speeds from the ground plane, no placeholder distance
    roi = cams.cameras[1].roi_mask((240, 320))
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


def test_people_model_config(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - {id: hall, source: a.tar, people_model: models/hall.npz}\n"
                    "  - {id: gate, source: b.avi}\n")
    with pytest.raises(CameraConfigError, match=r"camera 'gate' \(cameras\[1\]\).*at least one counting line"):
        load_cameras(path)
    path.write_text("cameras:\n  - {id: hall, source: a.tar, people_model: models/hall.npz}\n")
    cam = load_cameras(path).cameras[0]
    assert cam.people_model == str(tmp_path / "models" / "hall.npz") and cam.lines == [] and cam.people_every_s == 0.5
    assert cam.people_lines == []


def test_people_lines_need_a_people_model(tmp_path: Path) -> None:
    path = tmp_path / "cameras.yaml"
    path.write_text("cameras:\n  - {id: gate, source: b.avi, lines: [{id: l, points: [0, 0, 1, 1]}],"
                    " people_lines: [{id: doors, points: [0, 5, 9, 5]}]}\n")
    with pytest.raises(CameraConfigError, match=r"camera 'gate' \(cameras\[0\]\).*people_lines: counting people needs a people_model"):
        load_cameras(path)
    path.write_text("cameras:\n  - {id: hall, source: a.tar, people_model: hall.npz, people_lines: "
                    "[{id: doors, points: [0, 5, 9, 5]}, {id: doors, points: [0, 9, 9, 9]}]}\n")
    with pytest.raises(CameraConfigError, match=r"people_lines: duplicate line id"):
        load_cameras(path)
    path.write_text("cameras:\n  - {id: hall, source: a.tar, people_model: hall.npz, people_lines: "
                    "[{id: doors, points: [0, 5, 9, 5]}], lines: [{id: doors, points: [0, 9, 9, 9]}]}\n")
    cam = load_cameras(path).cameras[0]  # a people line may share a vehicle line's id: separate streams
    assert [(x.id, x.points) for x in cam.people_lines] == [("doors", (0, 5, 9, 5))]
