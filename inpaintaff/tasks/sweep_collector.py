"""The Hydra callback that gathers a multirun when it ends: a label-budget sweep into its report
(``tasks.label_budget_report``), any other sweep into the α table and plot (``segment.sweep``).
Configured under ``hydra.callbacks`` (``conf/hydra/default.yaml``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from inpaintaff.segment.sweep import collect_sweep
from inpaintaff.tasks import label_budget, label_budget_report


class SweepCollector(Callback):
    """Hydra callback: at the end of a multirun, gather every job's result."""

    def __init__(self) -> None:
        self.job_dirs: list[Path] = []

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        try:
            self.job_dirs.append(Path(config.hydra.runtime.output_dir))
        except Exception:  # no runtime info (e.g. a launcher that runs jobs elsewhere)
            pass

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if self.job_dirs:
            # The folder holding the job folders (robust to a re-resolved ${now:} in sweep.dir).
            parents = {d.parent for d in self.job_dirs}
            if len(parents) == 1:
                sweep_dir = parents.pop()
        if not sweep_dir.is_dir():
            return
        if next(sweep_dir.rglob(label_budget.RESULT_NAME), None) is not None:
            label_budget_report.collect(sweep_dir)  # a label-budget sweep: its own table and figures
        else:
            collect_sweep(sweep_dir)
