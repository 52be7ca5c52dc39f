"""Execute an analysis notebook with parameters (papermill-style `parameters` cell)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def execute_notebook(path: str | Path, params: dict[str, Any], out_path: str | Path | None = None, timeout: int = 600):
    """Run a notebook with the cell tagged `parameters` overridden by `params`; return the executed notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(path), as_version=4)
    cell = next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)
    if cell is None:
        raise ValueError(f"{path} has no cell tagged 'parameters'")
    cell.source = "\n".join(f"{k} = {v!r}" for k, v in params.items())
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
    if out_path is not None:
        from automixer.io import write_text_atomic

        write_text_atomic(out_path, nbformat.writes(nb))
    return nb


def figure_count(nb) -> int:
    """Number of PNG figures among a notebook's outputs."""
    return sum(
        "image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
