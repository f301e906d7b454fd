"""A model ready to run: its card and one ONNX Runtime session, made once and reused.

Inference is ``preprocess -> predict -> postprocess``::

    model = registry.load("chest-phantom-demo")
    batch = np.stack([model.preprocess(ds) for ds in datasets])
    results = model.postprocess(model.predict(batch))

Each :meth:`LoadedModel.predict` call runs in a worker thread under a time limit; past it the
run is told to stop (``RunOptions.terminate``) and :class:`~models.errors.InferenceTimeout` is
raised. Outputs holding NaN or infinite values raise :class:`~models.errors.InvalidOutput`:
a broken model never yields a score.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from pydicom.dataset import Dataset

from models.card import Identity, ModelCard
from models.errors import (
    BatchShapeError,
    CardError,
    InferenceError,
    InferenceTimeout,
    ModelError,
)
from models.integrity import read_verified_onnx
from models.preprocess import preprocess_dataset
from models.results import ImageResult, Prediction, ScoreResult, make_prediction, postprocess
from models.settings import ModelsSettings

__all__ = ["LoadedModel", "choose_providers", "session_options"]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
_GPU_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider"})
_TERMINATE_GRACE_S = 5.0


def session_options(settings: ModelsSettings) -> ort.SessionOptions:
    """Return ONNX Runtime session options from settings: thread counts and spinning.

    Parameters
    ----------
    settings
        The models settings.

    Returns
    -------
    onnxruntime.SessionOptions
        Options for a new session.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    options.inter_op_num_threads = settings.inter_op_threads
    options.log_severity_level = 3
    if not settings.thread_spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def choose_providers(
    settings: ModelsSettings,
) -> list[str | tuple[str, dict[str, Any]]]:
    """Pick ONNX Runtime providers: the settings' order, less those not installed.

    Parameters
    ----------
    settings
        ``providers`` in order of preference; TensorRT options from ``trt_fp16``.

    Returns
    -------
    list
        Provider names, or ``(name, options)`` pairs; CPU is always last.
    """
    available = set(ort.get_available_providers())
    chosen: list[str | tuple[str, dict[str, Any]]] = []
    for name in settings.providers:
        if name not in available:
            logger.debug("ONNX Runtime provider %s is not available; skipped", name)
            continue
        if name == "TensorrtExecutionProvider":
            chosen.append((name, {"trt_fp16_enable": settings.trt_fp16}))
        else:
            chosen.append(name)
    if "CPUExecutionProvider" not in settings.providers or not chosen:
        chosen.append("CPUExecutionProvider")
    return chosen


class LoadedModel:
    """A model card with its ONNX Runtime session.

    Parameters
    ----------
    card
        The validated card.
    directory
        The model's version directory (holds the ONNX file named by the card).
    settings
        Providers, thread counts and the inference timeout.

    Raises
    ------
    IntegrityError
        If the ONNX file's sha256 differs from the card's.
    CardError
        If the graph's inputs or outputs do not match the card.
    InferenceError
        If ONNX Runtime cannot load the graph.
    """

    def __init__(self, card: ModelCard, directory: Path, settings: ModelsSettings) -> None:
        self.card = card
        self.directory = directory
        self.settings = settings
        data = read_verified_onnx(card, directory)
        options = session_options(settings)
        try:
            self._session = ort.InferenceSession(
                data, sess_options=options, providers=choose_providers(settings)
            )
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise InferenceError(f"model {card.ref}: ONNX Runtime cannot load it: {exc}") from exc
        self.providers: list[str] = list(self._session.get_providers())
        self._output_names = [card.outputs.probabilities.name]
        if card.outputs.heatmap is not None:
            self._output_names.append(card.outputs.heatmap.name)
        self._check_graph()
        self._io_binding = self.providers[0] in _GPU_PROVIDERS
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix=f"ort-{card.identity.name}"
        )
        self._closed = threading.Event()
        logger.info(
            "model %s loaded from %s with ONNX Runtime provider %s%s",
            card.ref,
            directory,
            self.providers[0],
            " (IO binding)" if self._io_binding else "",
        )

    # -- identity ---------------------------------------------------------------------------

    @property
    def identity(self) -> Identity:
        """Creator, name, version, UID and sha256 (IHE AIR / DICOM TID 4019)."""
        return self.card.identity

    @property
    def provider(self) -> str:
        """The ONNX Runtime provider that runs this model."""
        return self.providers[0]

    @property
    def session(self) -> ort.InferenceSession:
        """The ONNX Runtime session itself (to time its bare ``run()``; do not close it)."""
        return self._session

    def _check_graph(self) -> None:
        source = f"{self.directory}/{self.card.identity.onnx_file}"
        inputs = {i.name: i for i in self._session.get_inputs()}
        spec = self.card.input
        if spec.name not in inputs:
            raise CardError(
                f"card {self.card.ref}: input.name: the graph {source} has no input "
                f"{spec.name!r} (it has {sorted(inputs)})"
            )
        graph_shape = inputs[spec.name].shape
        if len(graph_shape) != 4:
            raise CardError(
                f"card {self.card.ref}: input.shape: the graph's input has shape {graph_shape}"
            )
        for axis, (want, have) in enumerate(zip(spec.shape, graph_shape, strict=True)):
            if isinstance(have, int) and have > 0 and want != have:
                raise CardError(
                    f"card {self.card.ref}: input.shape: axis {axis} is {want} in the card but "
                    f"{have} in the graph {source}"
                )
        outputs = {o.name for o in self._session.get_outputs()}
        for name in self._output_names:
            if name not in outputs:
                raise CardError(
                    f"card {self.card.ref}: outputs: the graph {source} has no output {name!r} "
                    f"(it has {sorted(outputs)})"
                )

    # -- the three steps --------------------------------------------------------------------

    def preprocess(self, ds: Dataset) -> FloatArray:
        """Turn one DICOM dataset into a ``(C, H, W)`` float32 input (see :mod:`.preprocess`).

        Parameters
        ----------
        ds
            The dataset, pixel data included.

        Returns
        -------
        numpy.ndarray
            The tensor for one image.

        Raises
        ------
        PreprocessError
            If the pixels cannot be decoded or mapped.
        """
        return preprocess_dataset(ds, self.card.preprocessing, self.card.input)

    def predict(self, batch: npt.NDArray[Any], timeout_s: float | None = None) -> Prediction:
        """Run the model on a batch.

        Parameters
        ----------
        batch
            ``[N, C, H, W]`` inputs (cast to float32).
        timeout_s
            Time limit for the whole call; ``None`` uses ``settings.timeout_s``.

        Returns
        -------
        Prediction
            Probabilities ``[N, L]`` after the card's activation, heatmaps when declared.

        Raises
        ------
        BatchShapeError
            If the batch's shape does not fit the card's input.
        InferenceError
            If the model is closed or ONNX Runtime fails to run it.
        InferenceTimeout
            If the run took longer than the limit (it is terminated).
        InvalidOutput
            If an output has the wrong shape or holds NaN or infinite values.
        """
        inputs = self._check_batch(batch)
        limit = self.settings.timeout_s if timeout_s is None else timeout_s
        fixed = self.card.input.fixed_batch
        started = time.perf_counter()
        if fixed is None or fixed == len(inputs):
            outputs = self._run_with_timeout(inputs, started + limit, limit)
        else:
            outputs = self._run_fixed_batches(inputs, fixed, started + limit, limit)
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        heatmaps = outputs[1] if len(outputs) > 1 else None
        return make_prediction(self.card, len(inputs), outputs[0], heatmaps, elapsed_ms)

    def postprocess(self, prediction: Prediction) -> list[ImageResult]:
        """Turn a prediction into one result per image (labels against thresholds).

        Parameters
        ----------
        prediction
            The output of :meth:`predict`.

        Returns
        -------
        list of ImageResult
            In batch order.
        """
        return postprocess(self.card, prediction)

    def score_datasets(
        self, datasets: Iterable[Dataset], batch_size: int | None = None
    ) -> ScoreResult:
        """Preprocess, predict in batches, and postprocess a series of datasets.

        Parameters
        ----------
        datasets
            The images to score.
        batch_size
            Images per inference call; ``None`` uses ``settings.batch_size``.

        Returns
        -------
        ScoreResult
            One result per dataset in order, and the milliseconds each step took in total.

        Raises
        ------
        PreprocessError, InferenceTimeout, InvalidOutput
            As the three steps do; nothing is returned for the other images then.
        """
        size = batch_size or self.settings.batch_size
        t0 = time.perf_counter()
        tensors = [self.preprocess(ds) for ds in datasets]
        t1 = time.perf_counter()
        results: list[ImageResult] = []
        inference_ms = postprocess_ms = 0.0
        for start in range(0, len(tensors), size):
            prediction = self.predict(np.stack(tensors[start : start + size]))
            inference_ms += prediction.inference_ms
            t2 = time.perf_counter()
            results.extend(self.postprocess(prediction))
            postprocess_ms += (time.perf_counter() - t2) * 1000.0
        return ScoreResult(
            results=results,
            preprocess_ms=(t1 - t0) * 1000.0,
            inference_ms=inference_ms,
            postprocess_ms=postprocess_ms,
        )

    def close(self) -> None:
        """Stop the worker threads; the model cannot run afterwards."""
        self._closed.set()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- internals --------------------------------------------------------------------------

    def _check_batch(self, batch: npt.NDArray[Any]) -> FloatArray:
        spec = self.card.input
        if batch.ndim != 4 or tuple(batch.shape[1:]) != spec.shape[1:] or len(batch) == 0:
            raise BatchShapeError(
                f"model {self.card.ref}: batch of shape {list(batch.shape)} does not fit the "
                f"input shape {list(spec.shape)}"
            )
        return np.ascontiguousarray(batch, dtype=np.float32)

    def _run_fixed_batches(
        self, inputs: FloatArray, fixed: int, deadline: float, limit: float
    ) -> list[npt.NDArray[Any]]:
        """Run a model whose batch axis is fixed, padding the last chunk with zeros."""
        chunks: list[list[npt.NDArray[Any]]] = []
        for start in range(0, len(inputs), fixed):
            chunk = inputs[start : start + fixed]
            real = len(chunk)
            if real < fixed:
                pad = np.zeros((fixed - real, *chunk.shape[1:]), dtype=np.float32)
                chunk = np.concatenate([chunk, pad])
            chunks.append([out[:real] for out in self._run_with_timeout(chunk, deadline, limit)])
        return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]

    def _run_with_timeout(
        self, inputs: FloatArray, deadline: float, limit: float
    ) -> list[npt.NDArray[Any]]:
        if self._closed.is_set():
            raise InferenceError(f"model {self.card.ref} is closed")
        options = ort.RunOptions()
        future = self._executor.submit(self._run, inputs, options)
        remaining = max(deadline - time.perf_counter(), 0.0)
        try:
            return future.result(timeout=remaining)
        except concurrent.futures.TimeoutError:
            options.terminate = True
            future.cancel()
            try:
                future.result(timeout=_TERMINATE_GRACE_S)
            except Exception:  # the terminated run raises; that is the point
                logger.debug("model %s: terminated run ended", self.card.ref, exc_info=True)
            raise InferenceTimeout(
                f"model {self.card.ref}: inference took longer than {limit:g} s and was terminated"
            ) from None
        except ModelError:
            raise
        except Exception as exc:  # onnxruntime's errors are not typed
            raise InferenceError(f"model {self.card.ref}: inference failed: {exc}") from exc

    def _run(self, inputs: FloatArray, options: ort.RunOptions) -> list[npt.NDArray[Any]]:
        name = self.card.input.name
        if not self._io_binding:
            return list(self._session.run(self._output_names, {name: inputs}, options))
        binding = self._session.io_binding()
        binding.bind_cpu_input(name, inputs)
        for output in self._output_names:
            binding.bind_output(output, "cpu")
        self._session.run_with_iobinding(binding, options)
        return list(binding.copy_outputs_to_cpu())

    def __repr__(self) -> str:
        return f"LoadedModel({self.card.ref!r}, provider={self.provider!r})"
