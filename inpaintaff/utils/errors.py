"""Exceptions that name the offending file and the problem."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad user input: a missing file, wrong shape or dtype, NaN, an empty image, ..."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)
