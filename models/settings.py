"""Settings of the :mod:`models` package."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ModelsSettings"]

_BUNDLED = Path(__file__).resolve().parent / "bundled"


class ModelsSettings(BaseSettings):
    """Where models live and how ONNX Runtime runs them.

    Read from the ``[models]`` table of the TOML file and ``TRIAGE_MODELS_*`` variables.
    """

    model_config = SettingsConfigDict(env_prefix="TRIAGE_MODELS_", extra="forbid")

    models_dir: Path = Field(default=_BUNDLED, description="Directory of models (card + ONNX).")
    providers: list[str] = Field(
        default=["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        description="ONNX Runtime providers in order of preference; unavailable ones are skipped.",
    )
    intra_op_threads: int = Field(default=0, ge=0, description="0 lets ONNX Runtime choose.")
    inter_op_threads: int = Field(default=0, ge=0, description="0 lets ONNX Runtime choose.")
    thread_spinning: bool = Field(
        default=True,
        description="Let ONNX Runtime's intra-op threads spin while waiting for work (its "
        "default: lower latency per call, but the spinning threads take CPU from preprocessing "
        "and other work on the same cores).",
    )
    timeout_s: float = Field(default=30.0, gt=0, description="Per-call inference timeout.")
    state_file: Path | None = Field(
        default=None,
        description="JSON file of status overrides (enabled/disabled/shadow). The triage "
        "command line sets it to DATA_DIR/model-state.json when unset; None (a bare "
        "ModelsSettings) means models_dir/state.json.",
    )
    batch_size: int = Field(default=8, ge=1, description="Images per inference call.")
    trt_fp16: bool = Field(
        default=True, description="Let the TensorRT provider run in FP16 where the GPU supports it."
    )

    @property
    def effective_state_file(self) -> Path:
        """The state file in use: :attr:`state_file`, or ``models_dir/state.json``."""
        return self.state_file if self.state_file is not None else self.models_dir / "state.json"
