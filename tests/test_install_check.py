"""``trio_asyncio._install_check``: importing next to PyPI's trio-asyncio fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from trio_asyncio._install_check import find_conflicting


def _fake_dist(where: Path, dirname: str, name: str, version: str) -> Path:
    """Lay out a distribution's metadata directory the way an installer writes it."""
    meta = where / dirname
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return meta


def _import_with(path_entry: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Import trio_asyncio in a fresh interpreter with *path_entry* first on ``sys.path``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(path_entry)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    return subprocess.run(
        [sys.executable, "-c", "import trio_asyncio"],
        env=env,
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_import_fails_next_to_trio_asyncio_016(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    meta = _fake_dist(site, "trio_asyncio-0.16.0.dist-info", "trio-asyncio", "0.16.0")
    proc = _import_with(site, cwd=tmp_path)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ")
    assert "'trio-asyncio'" in last and "'trio-asyncio-rs'" in last
    assert str(meta) in last
    assert "pip uninstall trio-asyncio trio-asyncio-rs" in last
    assert "pip install trio-asyncio-rs" in last


def test_import_succeeds_next_to_our_own_metadata(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _fake_dist(site, "trio_asyncio_rs-0.1.0.dist-info", "trio-asyncio-rs", "0.1.0")
    proc = _import_with(site, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "dirname",
    [
        "trio_asyncio-0.16.0.dist-info",  # pip
        "Trio_Asyncio-0.16.0.dist-info",  # case-insensitive file systems, old tools
        "trio-asyncio-0.16.0-py3.11.egg-info",  # setuptools' develop / egg installs
        "trio.asyncio-0.15.0.egg-info",
    ],
)
def test_finds_trio_asyncio_metadata_in_every_spelling(tmp_path: Path, dirname: str) -> None:
    (tmp_path / dirname).mkdir()
    assert find_conflicting([str(tmp_path / "missing"), str(tmp_path)]) == str(
        tmp_path / dirname
    )


@pytest.mark.parametrize(
    "dirname",
    [
        "trio_asyncio_rs-0.1.0.dist-info",  # ours
        "trio_asyncio",  # the import package itself
        "trio-0.27.0.dist-info",
        "trio_asyncio-0.16.0.data",  # not metadata
        "pytest_trio-0.8.0.dist-info",
    ],
)
def test_ignores_other_names(tmp_path: Path, dirname: str) -> None:
    (tmp_path / dirname).mkdir()
    assert find_conflicting([str(tmp_path)]) is None


def test_skips_entries_that_are_not_directories(tmp_path: Path) -> None:
    archive = tmp_path / "python311.zip"
    archive.write_bytes(b"")
    assert find_conflicting([str(archive), str(tmp_path / "nowhere")]) is None


def test_empty_entry_means_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "trio_asyncio-0.16.0.dist-info").mkdir()
    monkeypatch.chdir(tmp_path)
    assert find_conflicting([""]) == str(tmp_path / "trio_asyncio-0.16.0.dist-info")


def test_this_environment_has_no_conflict() -> None:
    assert find_conflicting() is None
