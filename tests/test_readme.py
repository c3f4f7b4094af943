"""The README's quick start and CI's command must not drift apart."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line and not line.startswith(("#", "set ", "cd "))]
    assert len(ci_lines) == 1
    assert f"\n{ci_lines[0]}\n" in readme


def test_readme_quick_start_has_the_demo_command():
    assert "\nbash scripts/setup.sh && .venv/bin/nsac demo\n" in (ROOT / "README.md").read_text()
