"""`s2t --version` and `s2t probe`: facts on good audio, one clear line and non-zero exit on bad audio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audio_util import tone, write_audio
from clients.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("s2t ")


def test_probe_reports_facts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_audio(tmp_path / "a.flac", tone(2.0, 44100), 44100, 2)
    assert main(["probe", "--json", str(path)]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["format"] == "flac" and facts["sample_rate"] == 44100 and facts["channels"] == 2
    assert abs(facts["duration_s"] - 2.0) < 0.05
    assert 0.0 <= facts["speech_fraction"] <= 1.0


def test_probe_speech_fraction_on_real_speech(speech_files: list[Path], capsys: pytest.CaptureFixture[str]) -> None:
    f = next(p for p in speech_files if p.name.startswith("ravdess_actor01_neutral"))
    assert main(["probe", "--json", str(f)]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert 0.3 < facts["speech_fraction"] < 0.7  # RAVDESS clips: a sentence with silence around it


@pytest.mark.parametrize(
    "name,content",
    [
        ("missing.wav", None),
        ("empty.wav", b""),
        ("corrupt.wav", b"RIFF" + bytes(500)),
        ("wrong_ext.wav", b"%PDF-1.4 not audio\n" * 40),
        ("unknown.xyz", bytes(range(256)) * 4),
    ],
)
def test_probe_bad_input_one_line_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes | None) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["probe", str(path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("s2t probe: error:"), err
    assert "Traceback" not in "".join(err)


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("s2t")
    r = subprocess.run([str(exe), "probe", str(tmp_path / "nope.ogg")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip() == f"s2t probe: error: audio file not found: {tmp_path / 'nope.ogg'}"
