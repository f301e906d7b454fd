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
    timeout_s: float = Field(default=30.0, gt=0, description="Per-call inference timeout.")
