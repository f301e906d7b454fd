from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # the [train] extra, which `make test` installs

from models.card import load_card
from models.errors import ExportError
from models.registry import ModelRegistry
from models.settings import ModelsSettings
from triage.cli import main

pytestmark = pytest.mark.slow

SMALL_DENSENET: dict[str, Any] = {
    "spatial_dims": 2,
    "in_channels": 1,
    "out_channels": 3,
    "init_features": 8,
    "growth_rate": 8,
    "block_config": [2, 2],
}


def test_cli_export_of_a_monai_network_matches_pytorch(
    tmp_path: Path, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from monai.networks.nets.densenet import DenseNet

    torch.manual_seed(0)
    net = DenseNet(**SMALL_DENSENET).eval()
    weights = tmp_path / "weights.pt"
    torch.save(net.state_dict(), weights)
    args = [
        "models", "export", "--name", "densenet", "--version", "0.1.0",
        "--monai", "DenseNet", "--args", json.dumps(SMALL_DENSENET), "--weights", str(weights),
        "--input-size", "32", "32", "--labels", "pneumothorax,pleural_effusion,nodule_mass",
    ]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    directory = cli_env / "densenet" / "0.1.0"
    assert report["onnx"] == str(directory / "model.onnx")
    assert 0.0 <= report["parity_max_abs_diff"] <= 1e-4

    card = load_card(directory)
    assert card.identity.sha256 == report["sha256"]
    assert card.evaluation.parity_max_abs_diff == report["parity_max_abs_diff"]
    assert card.input.shape == (-1, 1, 32, 32)
    assert card.label_names == ("pneumothorax", "pleural_effusion", "nodule_mass")
    assert card.status == "shadow"

    assert main(["models", "validate", str(directory)]) == 0
    capsys.readouterr()

    # The registered model gives what PyTorch gives, at several batch sizes (dynamic axis).
    settings = ModelsSettings(models_dir=cli_env, providers=["CPUExecutionProvider"])
    model = ModelRegistry(settings).load("densenet")
    for n in (1, 5):
        x = np.random.default_rng(n).standard_normal((n, 1, 32, 32)).astype(np.float32)
        with torch.no_grad():
            expected = torch.sigmoid(net(torch.from_numpy(x))).numpy()
        np.testing.assert_allclose(model.predict(x).probabilities, expected, atol=1e-5)
    model.close()


def test_parity_failure_leaves_no_file_and_torchscript_exports(tmp_path: Path) -> None:
    from models.export.onnx import export_to_onnx, load_network

    class Noisy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            pooled = x.mean(dim=(2, 3))
            return pooled + torch.rand_like(pooled)

    out = tmp_path / "noisy" / "model.onnx"
    with pytest.raises(ExportError, match="parity check failed"):
        export_to_onnx(Noisy(), out, (1, 16, 16))
    assert not out.exists()

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            maps = self.conv(x)
            return maps.mean(dim=(2, 3)), maps

    path = tmp_path / "tiny.pt"
    with warnings.catch_warnings():  # TorchScript itself is deprecated in recent torch
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(Tiny().eval(), torch.randn(1, 1, 16, 16))  # type: ignore[no-untyped-call]
        torch.jit.save(traced, str(path))
        scripted = load_network(torchscript=path)
    result = export_to_onnx(
        scripted, tmp_path / "ts" / "model.onnx", (1, 1, 16, 16),
        output_names=("logits", "heatmap"),
    )  # fmt: skip
    assert result.max_abs_diff <= 1e-4
    assert result.output_names == ("logits", "heatmap")
    assert len(result.sha256) == 64

    with pytest.raises(ExportError, match="exactly one"):
        load_network()
    with pytest.raises(ExportError, match="no network 'NoSuchNet'"):
        load_network(monai="NoSuchNet")
