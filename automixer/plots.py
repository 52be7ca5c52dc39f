"""Small matplotlib helpers shared by the analysis notebooks (drawing only, no analysis)."""

from __future__ import annotations

from typing import Any


def empty_panel(ax: Any, message: str) -> None:
    """Turn `ax` into a panel that says plainly why it has nothing to show."""
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
