"""Inference benchmark: the model pipeline against a bare ONNX Runtime session.

For each model, in one run and on identical inputs, it times

* **pipeline**: what a worker does, through :class:`models.registry.ModelRegistry`:
  ``preprocess`` each DICOM dataset, ``predict`` the batch (worker thread, timeout, output
  checks), ``postprocess`` (labels against thresholds);
* **bare**: ``InferenceSession.run`` alone on the very tensors the pipeline computes
  (preprocessed once, outside the timing), same providers and thread counts;

at each batch size, and prints images per second for both and the ratio pipeline/bare (goal:
at least 0.9). The two paths alternate call by call, each going first in turn, so that a
shared machine slows both alike. It also prints the CPU time per image of the bare run (all of
ONNX Runtime's threads) and of preprocessing, and from them the **ceiling**
``bare CPU / (bare CPU + preprocessing CPU)``: when ONNX Runtime already keeps every core busy
(bare CPU per image = wall time per image x cores), preprocessing cannot be overlapped with it,
only added, and no pipeline can exceed that ratio on this machine.

Models: the demo model (``chest-phantom-demo`` under ``models/bundled``; skipped with a message
when absent) and MONAI DenseNet121 at 224 x 224 with random weights, exported to ONNX here (needs
the ``train`` extra; the export is cached in ``--cache-dir``).

Run: ``python -m benchmarks.inference --iterations 3``. With a GPU, ``--providers
TensorrtExecutionProvider,CUDAExecutionProvider,CPUExecutionProvider`` (TensorRT in FP16 unless
``--no-fp16``); providers that are not installed are skipped and the one used is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from models.errors import ModelError
from models.registry import ModelRegistry
from models.results import activate
from models.runtime import LoadedModel, choose_providers, session_options
from models.settings import ModelsSettings

logger = logging.getLogger(__name__)

DENSENET_NAME = "densenet121-random"
DENSENET_VERSION = "0.0.0"


@dataclass(frozen=True)
class Row:
    """One model at one batch size."""

    model: str
    provider: str
    batch: int
    iterations: int
    pipeline_images_per_s: float
    bare_images_per_s: float
    ratio: float
    preprocess_ms_per_image: float
    max_abs_diff: float
    bare_cpu_ms_per_image: float = 0.0
    preprocess_cpu_ms_per_image: float = 0.0

    @property
    def ceiling(self) -> float:
        """The best ratio any pipeline could reach on cores the bare run already keeps busy.

        Preprocessing is work the bare path never does; when ONNX Runtime's own threads fill
        every core (its CPU time per image equals the wall time per image times the cores),
        that work can only be added, not overlapped: the ratio cannot exceed
        ``bare CPU / (bare CPU + preprocessing CPU)``.
        """
        total = self.bare_cpu_ms_per_image + self.preprocess_cpu_ms_per_image
        return self.bare_cpu_ms_per_image / total if total > 0 else 1.0


def synthetic_datasets(count: int, size: int, seed: int = 0) -> list[Dataset]:
    """Make ``count`` CR chest datasets of ``size`` x ``size`` 12-bit pixels with a window."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(count):
        smooth = 2000 + 1200 * np.sin(6 * xx + rng.uniform(0, 6)) * np.cos(4 * yy)
        pixels = np.clip(smooth + rng.normal(0, 150, (size, size)), 0, 4095).astype(np.uint16)
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"
        ds.SOPInstanceUID = generate_uid()
        ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = 2048, 3000
        ds.PixelData = pixels.tobytes()
        out.append(ds)
    return out


def export_densenet(cache_dir: Path, size: int) -> Path:
    """Export MONAI DenseNet121 (random weights, 1 channel, 5 labels) into ``cache_dir``."""
    from models.card import load_card
    from models.errors import CardError

    directory = cache_dir / DENSENET_NAME / DENSENET_VERSION
    try:
        card = load_card(directory)
        if card.input.size == (size, size):
            print(f"densenet121: reusing the export in {directory}", flush=True)
            return cache_dir
    except CardError:
        pass
    import torch
    from monai.networks.nets.densenet import DenseNet121

    from models.export.onnx import card_skeleton, export_to_onnx, write_card_skeleton

    torch.manual_seed(0)
    net = DenseNet121(spatial_dims=2, in_channels=1, out_channels=5)
    print("densenet121: exporting to ONNX (random weights) ...", flush=True)
    started = time.perf_counter()
    result = export_to_onnx(net, directory / "model.onnx", (1, size, size), parity_batches=(1, 2))
    labels = [f"label_{i}" for i in range(5)]
    card = card_skeleton(
        result,
        name=DENSENET_NAME,
        version=DENSENET_VERSION,
        input_shape=(1, size, size),
        labels=labels,
    )
    write_card_skeleton(card, directory)
    print(
        f"densenet121: exported in {time.perf_counter() - started:.0f} s, "
        f"parity max abs diff {result.max_abs_diff:.2e}",
        flush=True,
    )
    return cache_dir


def bare_session(model: LoadedModel, settings: ModelsSettings) -> ort.InferenceSession:
    """Open a plain session on the same ONNX file, providers, thread counts and spinning."""
    options = session_options(settings)
    path = model.directory / model.card.identity.onnx_file
    return ort.InferenceSession(str(path), options, providers=choose_providers(settings))


def bench_model(
    label: str,
    model: LoadedModel,
    settings: ModelsSettings,
    datasets: Sequence[Dataset],
    batches: Sequence[int],
    iterations: int,
    gap_s: float = 0.05,
) -> list[Row]:
    """Time the pipeline and the bare session at each batch size."""
    session = bare_session(model, settings)
    output = model.card.outputs.probabilities
    tensors = np.stack([model.preprocess(ds) for ds in datasets])  # the bare path's inputs
    rows = []
    for n in batches:
        inputs, batch = datasets[:n], tensors[:n]
        feeds = {model.card.input.name: batch}

        def pipeline(
            inputs: Sequence[Dataset] = inputs,
        ) -> tuple[np.ndarray[Any, Any], float, float]:
            # this thread's CPU only: ONNX Runtime's threads may still be spinning meanwhile
            t0, c0 = time.perf_counter(), time.thread_time()
            prepared = np.stack([model.preprocess(ds) for ds in inputs])
            t1, c1 = time.perf_counter(), time.thread_time()
            prediction = model.predict(prepared)
            model.postprocess(prediction)
            return prediction.probabilities, t1 - t0, c1 - c0

        def bare(feeds: dict[str, np.ndarray[Any, Any]] = feeds) -> np.ndarray[Any, Any]:
            out: np.ndarray[Any, Any] = session.run([output.name], feeds)[0]
            return out

        probs, _, _ = pipeline()  # warm-up: arenas, kernels, TensorRT engines
        raw = bare()
        diff = float(np.max(np.abs(probs - activate(raw, output.activation))))
        pipe_s = bare_s = prep_s = bare_cpu = prep_cpu = 0.0
        # Blocks of consecutive calls, each path in turn (alternating which goes first, so
        # drift on a shared machine evens out). Before each block: a pause, so the other
        # session's spinning threads are asleep again, and one untimed call to warm up.
        blocks = [iterations // 2, iterations - iterations // 2]
        for i, calls in enumerate(b for b in blocks if b):
            for path in ("pipeline", "bare") if i % 2 == 0 else ("bare", "pipeline"):
                time.sleep(gap_s)
                bare() if path == "bare" else pipeline()
                t0, c0 = time.perf_counter(), time.process_time()
                for _ in range(calls):
                    if path == "bare":
                        bare()
                    else:
                        _, prep, prep_c = pipeline()
                        prep_s, prep_cpu = prep_s + prep, prep_cpu + prep_c
                if path == "bare":
                    bare_s += time.perf_counter() - t0
                    bare_cpu += time.process_time() - c0
                else:
                    pipe_s += time.perf_counter() - t0
        images = n * iterations
        row = Row(
            model=label,
            provider=model.provider,
            batch=n,
            iterations=iterations,
            pipeline_images_per_s=images / pipe_s,
            bare_images_per_s=images / bare_s,
            ratio=bare_s / pipe_s,
            preprocess_ms_per_image=1000 * prep_s / images,
            max_abs_diff=diff,
            bare_cpu_ms_per_image=1000 * bare_cpu / images,
            preprocess_cpu_ms_per_image=1000 * prep_cpu / images,
        )
        print(
            f"{label:<22} {row.provider:<26} batch {n:>3}: "
            f"pipeline {row.pipeline_images_per_s:8.1f} img/s, "
            f"bare {row.bare_images_per_s:8.1f} img/s, ratio {row.ratio:5.2f}"
            f" (preprocess {row.preprocess_ms_per_image:.2f} ms/img; CPU ms/img: bare"
            f" {row.bare_cpu_ms_per_image:.2f}, preprocess {row.preprocess_cpu_ms_per_image:.2f};"
            f" ceiling {row.ceiling:.2f})",
            flush=True,
        )
        rows.append(row)
    return rows


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inference",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--providers",
        default="CPUExecutionProvider",
        help="ONNX Runtime providers in order of preference, comma-separated.",
    )
    parser.add_argument("--no-fp16", action="store_true", help="TensorRT in FP32.")
    parser.add_argument(
        "--no-spinning",
        action="store_true",
        help="Both sessions without ONNX Runtime's thread spinning (spinning threads of one "
        "session take the cores from the other between calls).",
    )
    parser.add_argument("--batch-sizes", default="1,8,64", help="Comma-separated batch sizes.")
    parser.add_argument("--iterations", type=int, default=3, help="Timed calls per batch size.")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: ORT's).")
    parser.add_argument(
        "--image-size",
        type=int,
        default=512,
        help="Rows and columns of the synthetic DICOM images.",
    )
    parser.add_argument("--size", type=int, default=224, help="DenseNet121 input size.")
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=ModelsSettings().models_dir,
        help="Where the demo model lives.",
    )
    parser.add_argument("--demo", default="chest-phantom-demo", help="The demo model's name.")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-densenet", action="store_true")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="Keep the DenseNet121 export here (default: a temporary folder).",
    )
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows as JSON.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0, or 1 when nothing could be measured."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    batches = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    providers = [p.strip() for p in args.providers.split(",") if p.strip()]
    available = ort.get_available_providers()
    print(f"onnxruntime {ort.__version__}; available providers: {available}", flush=True)
    if not any(p in available for p in ("CUDAExecutionProvider", "TensorrtExecutionProvider")):
        print("no GPU provider available: CPU only", flush=True)
    datasets = synthetic_datasets(max(batches), args.image_size)
    rows: list[Row] = []
    common = {
        "providers": providers,
        "intra_op_threads": args.threads,
        "trt_fp16": not args.no_fp16,
        "timeout_s": 600.0,
        "thread_spinning": not args.no_spinning,
    }
    if not args.skip_demo:
        settings = ModelsSettings(models_dir=args.models_dir, **common)
        try:
            model = ModelRegistry(settings).load(args.demo)
        except ModelError as exc:
            print(f"demo model skipped: {exc}", flush=True)
        else:
            rows += bench_model(
                "demo " + model.card.ref, model, settings, datasets, batches, args.iterations
            )
            model.close()
    if not args.skip_densenet:
        with tempfile.TemporaryDirectory(prefix="bench-densenet-") as tmp:
            try:
                cache = export_densenet(args.cache_dir or Path(tmp), args.size)
            except ImportError as exc:
                print(f"densenet121 skipped: needs the train extra ({exc})", flush=True)
            else:
                settings = ModelsSettings(models_dir=cache, **common)
                model = ModelRegistry(settings).load(DENSENET_NAME)
                rows += bench_model(
                    "densenet121 224x224", model, settings, datasets, batches, args.iterations
                )
                model.close()
    if args.json:
        records = [{**asdict(r), "ceiling": r.ceiling} for r in rows]
        args.json.write_text(json.dumps(records, indent=2) + "\n")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
