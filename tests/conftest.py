"""Shared fixtures: running the CLI, the OpenSSL CLI as an interop peer, headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# Property tests judge behaviour, never speed: no per-example deadline (a loaded
# 2-core CI machine would otherwise fail them for being slow).
settings.register_profile("ztgate", deadline=None)
settings.load_profile("ztgate")

Run = Callable[..., subprocess.CompletedProcess[bytes]]


@pytest.fixture(scope="session")
def openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("the openssl CLI is required (Debian package openssl); .ci/run installs it")
    return path


@pytest.fixture
def ztgate() -> Run:
    """Run `ztgate ARGS…` as an operator would; returns the completed process."""

    def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "ztgate", *args],
            input=stdin,
            capture_output=True,
            timeout=60,
            check=False,
        )

    return run


@pytest.fixture
def ossl(openssl: str) -> Run:
    """Run `openssl ARGS…`, failing the test with OpenSSL's stderr on error."""

    def run(*args: str | Path, ok: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run(
            [openssl, *map(str, args)], capture_output=True, timeout=60, check=False
        )
        if ok and proc.returncode != 0:
            pytest.fail(f"openssl {' '.join(map(str, args))} failed: {proc.stderr.decode()}")
        return proc

    return run


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium (Selenium ``webdriver.Chrome``) with a fresh profile."""
    from tests.browser import chromium_driver  # selenium loads only for browser tests

    driver = chromium_driver(tmp_path / "chromium")
    try:
        yield driver
    finally:
        driver.quit()
