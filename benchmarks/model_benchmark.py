"""Throughput of ``triage models benchmark`` against a bare ONNX Runtime session.

It exports MONAI DenseNet121 at 224 x 224 with random weights (as :mod:`benchmarks.inference`
does; needs the ``train`` extra; cached in ``--cache-dir``), writes ``--n`` NIH-layout phantoms
(PNG), and runs the benchmark command on them with a label map that gives the network's five
outputs NIH finding names. The command times its own pipeline (decoding processes, batching,
inference, cache) from the first decode to the last batch's scores, then the same session's
``run()`` alone on the same batches; the report's ``throughput`` holds both. This prints them
and their ratio (goal: at least 0.8).

Run: ``python -m benchmarks.model_benchmark --n 200 --workers 2``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.inference import DENSENET_NAME, export_densenet
from models.phantoms import write_dataset
from triage.cli import main as triage_main

logger = logging.getLogger(__name__)

GOAL = 0.8
LABEL_MAP = """\
nih:
  label_0: [Pneumothorax]
  label_1: [Effusion]
  label_2: [Nodule, Mass]
  label_3: [Cardiomegaly]
  label_4: [Consolidation]
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="NIH-layout phantoms to score.")
    parser.add_argument("--image-size", type=int, default=512, help="Phantom matrix size.")
    parser.add_argument("--size", type=int, default=224, help="DenseNet121 input size.")
    parser.add_argument("--workers", type=int, default=2, help="Decoding processes.")
    parser.add_argument("--batch-size", type=int, default=16, help="Images per inference call.")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads.")
    parser.add_argument(
        "--providers", default="CPUExecutionProvider", help="ONNX Runtime providers, in order."
    )
    parser.add_argument("--cache-dir", type=Path, help="Keep the DenseNet121 export here.")
    parser.add_argument("--json", type=Path, help="Also write the throughput here.")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return 0 when the ratio reaches the goal, 1 when it does not."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-model-") as tmp:
        work = Path(tmp)
        models = export_densenet(args.cache_dir or work / "models", args.size)
        started = time.perf_counter()
        write_dataset(work / "nih", args.n, 20261202, "nih", size=args.image_size)
        print(f"{args.n} NIH-layout phantoms in {time.perf_counter() - started:.0f} s", flush=True)
        (work / "labels.yaml").write_text(LABEL_MAP)
        providers = json.dumps([p.strip() for p in args.providers.split(",") if p.strip()])
        command = [
            *("models", "benchmark", DENSENET_NAME, "--models-dir", str(models)),
            *(str(work / "nih"), "--layout", "nih", "--split", "all"),
            *("--label-map", str(work / "labels.yaml"), "--out", str(work / "out")),
            *("--workers", str(args.workers), "--batch-size", str(args.batch_size)),
            *("--replicates", "20"),
        ]
        os.environ["TRIAGE_MODELS_PROVIDERS"] = providers
        os.environ["TRIAGE_MODELS_INTRA_OP_THREADS"] = str(args.threads)
        rc = triage_main(command)
        if rc != 0:
            print(f"the benchmark command failed ({rc})", flush=True)
            return 1
        report = json.loads((work / "out" / "report.json").read_text())
    throughput = report["throughput"]
    ratio = throughput["share_of_bare"]
    print(
        f"densenet121 {args.size}x{args.size} on {throughput['provider']}, batch "
        f"{throughput['batch_size']}, {throughput['images']} images: command "
        f"{throughput['images_per_s']:.1f} images/s, bare ONNX Runtime "
        f"{throughput['bare_images_per_s']:.1f} images/s, ratio {ratio:.2f} (goal >= {GOAL})",
        flush=True,
    )
    if args.json:
        args.json.write_text(json.dumps(throughput, indent=2) + "\n")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
