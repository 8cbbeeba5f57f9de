"""What one server does for its clients: bounds on the work of a run and on traffic, beyond AMConfig's own
bounds (which say what the engine accepts; these say what a shared server accepts per request)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..engine import AMConfig

RUN_ID = r"^[0-9a-f]{12}$"  # what jobs.new_run_id makes; nothing else may name a folder


class ServerLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_rows: int = Field(512, ge=1, le=100_000, description="targets x samples of one run")
    max_steps: int = Field(10_000, ge=1, le=100_000, description="steps of one run")
    max_draw_rows: int = Field(8192, ge=1, le=1_000_000, description="rows x distribution draws of one run")
    max_runs_per_client: int = Field(4, ge=1, le=1000, description="unfinished runs of one client")
    max_unfinished: int = Field(64, ge=1, le=10_000, description="queued and running runs of all clients")
    max_snapshot_images: int = Field(100_000, ge=1, le=10_000_000,
                                     description="rows x kept snapshots of one run (6.4 KB each)")
    history: int = Field(100, ge=1, le=100_000, description="finished runs kept in memory")
    history_mib: int = Field(1024, ge=1, le=1 << 20, description="memory the finished runs kept may take")
    stored_runs: int = Field(1000, ge=1, le=1_000_000, description="saved run folders kept in runs_dir")
    max_message_bytes: int = Field(262_144, ge=1024, le=16 << 20,
                                   description="one websocket message or request body (an objective over every "
                                               "unit needs ~130 KB)")
    messages_per_second: float = Field(20.0, gt=0, le=10_000, description="websocket messages of one client")
    max_export_runs: int = Field(16, ge=1, le=1000, description="runs in one export")
    analysis_cache: int = Field(64, ge=1, le=250, description="unit analyses kept in memory")


class LimitError(ValueError):
    """A run asks for more than this server does; `field` is the dotted config field to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Busy(RuntimeError):
    """The server (or this client's share of it) is full; try again when a run finishes."""


def check_work(config: AMConfig, limits: ServerLimits, model=None) -> None:
    """Raise LimitError when `config` asks for more than this server runs, or for what `model` lacks."""
    if model is not None:
        from ..engine.model_check import ConfigMismatch, check_config

        try:
            check_config(config, model)
        except ConfigMismatch as exc:
            raise LimitError(exc.field, exc.message) from None
    rows = len(config.objectives) * config.samples
    if rows > limits.max_rows:
        field = "samples" if len(config.objectives) == 1 else "unit"
        raise LimitError(field, f"this server runs at most {limits.max_rows} rows (units x samples) at once, "
                                f"got {len(config.objectives)} x {config.samples} = {rows}")
    if config.steps > limits.max_steps:
        raise LimitError("steps", f"this server runs at most {limits.max_steps} steps, got {config.steps}")
    snapshots = rows * (config.steps // config.snapshot_every + 2)
    if snapshots > limits.max_snapshot_images:
        raise LimitError("snapshot_every", f"rows x snapshots kept must be at most {limits.max_snapshot_images}, got "
                                           f"{rows} x {config.steps // config.snapshot_every + 2}: raise snapshot_every")
    if config.method.endswith("distribution") and rows * config.distribution.draws > limits.max_draw_rows:
        raise LimitError("distribution.draws", f"rows x draws must be at most {limits.max_draw_rows}, "
                                               f"got {rows} x {config.distribution.draws}")
