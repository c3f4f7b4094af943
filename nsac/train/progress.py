"""A progress bar: tqdm's when it is installed and wanted (on a terminal), a silent stand-in otherwise."""

from __future__ import annotations

from typing import Any


class _Silent:
    """What the trainer calls on a bar, doing nothing."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **_: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(*, show: bool, **options: Any) -> Any:
    """tqdm(**options), shown only when `show` and stderr is a terminal; a stand-in when tqdm is missing."""
    if not show:
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return tqdm(disable=None, **options)  # disable=None: no bar when stderr is not a terminal
