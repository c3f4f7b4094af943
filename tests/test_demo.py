"""`nsac demo`, the README's main job: it benches the anchors on the shipped example and says where the report is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nsac.codecs import codec_class


@pytest.mark.skipif(not codec_class("opus").availability()[0], reason="PyAV with libopus missing")
def test_demo_benches_the_shipped_example(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "nsac", "demo", "--out", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "| opus@6000 |" in result.stdout and "report.html" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    opus = summary["conditions"]["opus@6000"]
    # measured from the bytes, at most the nominal 6 kb/s plus 5 %
    assert 0 < opus["values"]["payload_kbps"]["mean"] <= 6.3
    assert (out / "report.html").exists() and (out / "results.csv").exists()
