"""The code stays ruff-clean everywhere and mypy-clean (strict) on the non-Qt layers.

Run as tests so that CI holds the line, not memory.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", "credits_desktop", "tests", "benchmarks")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_domain_store_and_services() -> None:
    result = run(
        "mypy",
        "credits_desktop/domain",
        "credits_desktop/store",
        "credits_desktop/services",
    )
    assert result.returncode == 0, result.stdout + result.stderr
