"""Commands that read a store refuse one that does not exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app


@pytest.mark.parametrize("args", [["labels", "list"], ["labels", "approve", "label:x"], ["report", "labels"]])
def test_a_reading_command_on_a_missing_store_creates_nothing(tmp_path: Path, args: list[str]) -> None:
    """Regression: `labels list --store sqlite:///nonexist/dir/x.sqlite` created the folders and
    an empty store and answered `{"labels": []}` with exit code 0."""
    store = tmp_path / "nonexist" / "x.sqlite"
    result = CliRunner().invoke(app, [*args, "--store", f"sqlite:///{store}", "--json"])
    assert result.exit_code == 2
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["type"] == "ConfigError" and "no store at" in last["error"]
    assert not store.parent.exists()


@pytest.mark.parametrize("where", ["folder", "under-a-file"])
def test_an_unwritable_rejects_path_stops_before_anything_is_imported(tmp_path: Path, where: str) -> None:
    """Regression (a new user's review): `--rejects /tmp` raised IsADirectoryError after the
    import had committed: a traceback for an import that happened, and the rejects lost."""
    from conftest import SEEDS

    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    rejects = tmp_path if where == "folder" else blocker / "rejects.jsonl"
    store = tmp_path / "s.sqlite"
    result = CliRunner().invoke(app, ["ingest", str(SEEDS / "examples" / "xapi" / "01-learning.json"), "--format", "xapi",
                                      "--store", f"sqlite:///{store}", "--rejects", str(rejects), "--json"])
    assert result.exit_code == 2
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["type"] == "ConfigError" and last["error"].startswith(f"--rejects {rejects}: ")
    assert not store.exists()


def test_ingest_checks_its_default_rejects_file_and_its_path_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression (a new user's review): an unwritable default out/rejects-xapi.jsonl failed after
    the import had committed; a mistyped xAPI path exited 0."""
    from conftest import SEEDS

    out = tmp_path / "out"
    (out / "rejects-xapi.jsonl").mkdir(parents=True)
    monkeypatch.setenv("CAPMAP_OUT_DIR", str(out))
    store = tmp_path / "s.sqlite"
    args = ["ingest", str(SEEDS / "examples" / "xapi" / "03-rejected.jsonl"), "--format", "xapi",
            "--store", f"sqlite:///{store}", "--json"]
    result = CliRunner().invoke(app, args)
    last = json.loads(result.output.strip().splitlines()[-1])
    assert result.exit_code == 2 and "rejects-xapi.jsonl: is a folder" in last["error"] and not store.exists()
    (out / "rejects-xapi.jsonl").rmdir()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0 and json.loads(result.output.strip().splitlines()[-1])["rejected"] > 0
    assert (out / "rejects-xapi.jsonl").is_file()
    clean = ["ingest", str(SEEDS / "examples" / "xapi" / "01-learning.json"), *args[2:]]
    result = CliRunner().invoke(app, clean)  # no rejects: the report of the earlier import goes
    assert result.exit_code == 0 and json.loads(result.output.strip().splitlines()[-1])["rejected"] == 0
    assert not (out / "rejects-xapi.jsonl").exists()
    missing = CliRunner().invoke(app, ["ingest", str(tmp_path / "typo.json"), *args[2:]])
    assert missing.exit_code == 2 and "typo.json: file or folder not found" in missing.output
