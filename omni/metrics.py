"""Metrics rows to `${run}/metrics.csv` (appended across resumes) and TensorBoard if installed."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from pipeline.shards import atomic_write_bytes

FIELDS = ("time", "stage", "step", "epoch", "split", "loss", "lr", "tokens_per_s", "items", "tflops_per_s")


class MetricsLog:
    def __init__(self, run_dir: Path, tensorboard: bool = True, enabled: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.csv"
        self.tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(FIELDS)
        else:
            self._upgrade_header()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
                self.tb = SummaryWriter(str(Path(run_dir) / "tensorboard"))
            except Exception:  # tensorboard not installed: CSV only
                self.tb = None

    def _upgrade_header(self) -> None:
        """A run resumed by a version that writes more columns: rewrite the file under today's
        header (old rows keep their values, new columns empty) so rows stay aligned."""
        rows = read(self.path.parent)
        with self.path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if tuple(header) == FIELDS:
            return
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        writer.writerows([[row.get(k) or "" for k in FIELDS] for row in rows])
        atomic_write_bytes(self.path, out.getvalue().encode())

    def write(self, **row) -> None:
        if not self.enabled:
            return
        row.setdefault("time", round(time.time(), 3))
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in FIELDS])
        if self.tb is not None:
            tag = f"stage{row['stage']}/{row['split']}"
            for k in ("loss", "lr", "tokens_per_s"):
                if row.get(k) not in (None, ""):
                    self.tb.add_scalar(f"{tag}/{k}", float(row[k]), int(row["step"]))
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def read(run_dir: Path) -> list[dict]:
    """The rows of a run's metrics.csv (tests, notebooks)."""
    with (Path(run_dir) / "metrics.csv").open() as f:
        return list(csv.DictReader(f))
