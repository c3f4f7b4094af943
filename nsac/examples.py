"""The example audio that ships inside the package, found without touching the network."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: name -> file under nsac/data; each has a .LICENSE.txt beside it
EXAMPLES = {"speech": "example_speech.flac"}


def example_path(name: str = "speech") -> Path:
    """Path of a shipped example clip (the licence sits beside it)."""
    return Path(str(resources.files("nsac") / "data" / EXAMPLES[name]))
