from __future__ import annotations

import copy
import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset

from models.card import InputSpec, Interpolation, Normalisation, Preprocessing, Resize, Window
from models.errors import PreprocessError
from models.preprocess import decode_first_frame, preprocess_dataset
from tests.builders.dicom import chest_dataset
from tests.builders.fuzz import Flip, build

SPEC = Preprocessing(resize=Resize(size=(64, 64)))
INPUT = InputSpec(name="image", shape=(-1, 1, 64, 64))


def _read(name: str) -> Dataset:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom test file {name} is missing (install pydicom-data)"
    return pydicom.dcmread(path)


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("RG1_UNCR.dcm", "MONOCHROME1 CR"),
        ("MR-SIEMENS-DICOM-WithOverlays.dcm", "12 of 16 bits, with a window"),
        ("SC_rgb_jpeg_dcmtk.dcm", "JPEG baseline, YBR_FULL colour"),
        ("JPEG-LL.dcm", "JPEG lossless, signed"),
        ("emri_small_jpeg_ls_lossless.dcm", "JPEG-LS lossless, multi-frame"),
        ("JPEG2000.dcm", "JPEG 2000"),
        ("MR_small_RLE.dcm", "RLE lossless"),
        ("emri_small.dcm", "multi-frame"),
        ("CT_small.dcm", "rescale slope/intercept"),
        ("examples_palette.dcm", "PALETTE COLOR"),
        ("SC_ybr_full_422_uncompressed.dcm", "YBR_FULL_422"),
    ],
)
def test_pydicom_test_files_give_finite_tensors(name: str, what: str) -> None:
    ds = _read(name)
    before = copy.deepcopy(ds)
    tensor = preprocess_dataset(ds, SPEC, INPUT)
    assert tensor.shape == (1, 64, 64), what
    assert tensor.dtype == np.float32
    assert np.isfinite(tensor).all()
    assert tensor.min() == 0.0 and tensor.max() == 1.0  # minmax, and the image is not constant
    assert tensor.flags.c_contiguous
    assert ds == before  # the caller's dataset is not modified


def test_multi_frame_uses_the_first_frame() -> None:
    ds = _read("emri_small.dcm")
    assert int(ds.NumberOfFrames) == 10
    frame, photometric = decode_first_frame(ds)
    np.testing.assert_array_equal(frame, ds.pixel_array[0])
    assert photometric == "MONOCHROME2"
    # the JPEG-LS copy of the same frames decodes to the same tensor
    lossless = preprocess_dataset(_read("emri_small_jpeg_ls_lossless.dcm"), SPEC, INPUT)
    np.testing.assert_allclose(preprocess_dataset(ds, SPEC, INPUT), lossless, atol=1e-6)


def test_monochrome1_is_inverted() -> None:
    mono2 = chest_dataset(seed=5)
    mono1 = chest_dataset(seed=5, photometric="MONOCHROME1")
    spec = Preprocessing(resize=Resize(size=(48, 40)), voi_lut=False)
    inp = InputSpec(name="image", shape=(-1, 1, 48, 40))
    a = preprocess_dataset(mono2, spec, inp)
    b = preprocess_dataset(mono1, spec, inp)
    np.testing.assert_allclose(b, 1.0 - a, atol=1e-6)
    keep = spec.model_copy(update={"invert_monochrome1": False})
    np.testing.assert_allclose(preprocess_dataset(mono1, keep, inp), a, atol=1e-6)
    # a real MONOCHROME1 radiograph: the collimated border (high stored values) becomes dark
    cr = preprocess_dataset(_read("RG1_UNCR.dcm"), SPEC, INPUT)[0]
    assert cr[:3, :].mean() < cr[24:40, 24:40].mean()


def test_bits_stored_is_respected() -> None:
    ds = chest_dataset(rows=8, columns=8, seed=1, bits_stored=12)
    clean = np.frombuffer(ds.PixelData, dtype=np.uint16).reshape(8, 8)
    noisy = clean | np.uint16(0xF000)  # garbage in the 4 unused high bits
    dirty = copy.deepcopy(ds)
    dirty.PixelData = noisy.tobytes()
    spec = Preprocessing(resize=Resize(size=(8, 8)), voi_lut=False, modality_lut=False)
    inp = InputSpec(name="image", shape=(-1, 1, 8, 8))
    np.testing.assert_array_equal(
        preprocess_dataset(dirty, spec, inp), preprocess_dataset(ds, spec, inp)
    )


def test_forced_window_clips() -> None:
    ds = chest_dataset(rows=16, columns=16, seed=2)
    raw = np.frombuffer(ds.PixelData, dtype=np.uint16).reshape(16, 16).astype(np.float64)
    spec = Preprocessing(resize=Resize(size=(16, 16)), window=Window(center=2048, width=1024))
    tensor = preprocess_dataset(ds, spec, InputSpec(name="image", shape=(-1, 1, 16, 16)))[0]
    assert (tensor[raw <= 1536] == 0).all()
    assert (tensor[raw > 2560] == 1).all()
    inside = (raw > 1600) & (raw < 2500)
    assert ((tensor[inside] > 0) & (tensor[inside] < 1)).all()


def test_window_from_dataset_is_applied() -> None:
    ds = chest_dataset(rows=16, columns=16, seed=2)
    ds.WindowCenter, ds.WindowWidth = 1000, 200
    raw = np.frombuffer(ds.PixelData, dtype=np.uint16).reshape(16, 16)
    inp = InputSpec(name="image", shape=(-1, 1, 16, 16))
    spec = Preprocessing(resize=Resize(size=(16, 16)))
    tensor = preprocess_dataset(ds, spec, inp)[0]
    assert (tensor[raw > 1100] == 1).all()
    off = preprocess_dataset(ds, spec.model_copy(update={"voi_lut": False}), inp)[0]
    assert not np.allclose(off, tensor)


def test_rgb_and_three_channels() -> None:
    ds = _read("SC_rgb_jpeg_dcmtk.dcm")
    inp = InputSpec(name="image", shape=(-1, 3, 32, 32))
    spec = Preprocessing(resize=Resize(size=(32, 32), interpolation=Interpolation.AREA))
    tensor = preprocess_dataset(ds, spec, inp)
    assert tensor.shape == (3, 32, 32)
    np.testing.assert_array_equal(tensor[0], tensor[2])


def test_zscore() -> None:
    ds = chest_dataset(seed=4)
    inp = InputSpec(name="image", shape=(-1, 1, 48, 40))
    own = Preprocessing(resize=Resize(size=(48, 40)), normalisation=Normalisation(kind="zscore"))
    tensor = preprocess_dataset(ds, own, inp)
    assert abs(float(tensor.mean())) < 1e-4 and abs(float(tensor.std()) - 1) < 1e-3
    fixed = own.model_copy(
        update={"normalisation": Normalisation(kind="zscore", mean=0.5, std=0.25)}
    )
    minmax = preprocess_dataset(ds, own.model_copy(update={"normalisation": Normalisation()}), inp)
    np.testing.assert_allclose(preprocess_dataset(ds, fixed, inp), (minmax - 0.5) / 0.25, atol=1e-5)


def test_constant_image_is_zero() -> None:
    ds = chest_dataset(rows=8, columns=8)
    ds.PixelData = np.full((8, 8), 100, dtype=np.uint16).tobytes()
    inp = InputSpec(name="image", shape=(-1, 1, 8, 8))
    tensor = preprocess_dataset(ds, Preprocessing(resize=Resize(size=(8, 8))), inp)
    assert not tensor.any()


def test_errors_are_preprocess_errors() -> None:
    ds = chest_dataset()
    del ds.PixelData
    with pytest.raises(PreprocessError, match="no Pixel Data"):
        preprocess_dataset(ds, SPEC, INPUT)
    broken = chest_dataset()
    broken.PixelData = b"\0" * 10  # far too short for 48 x 40 x 2 bytes
    with pytest.raises(PreprocessError, match="cannot decode"):
        preprocess_dataset(broken, SPEC, INPUT)
    odd = chest_dataset()
    odd.PhotometricInterpretation = "HSV"
    with pytest.raises(PreprocessError, match="HSV"):
        preprocess_dataset(odd, SPEC, INPUT)


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("MR-SIEMENS-DICOM-WithOverlays.dcm", None),
        ("CT_small.dcm", None),
        ("CT_small.dcm", "LINEAR_EXACT"),
        ("JPEG-LL.dcm", "LINEAR"),
        ("RG1_UNCR.dcm", None),
    ],
)
def test_fast_window_equals_pydicom(name: str, function: str | None) -> None:
    from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

    from models.preprocess import _apply_voi, _frame_dataset

    ds = _read(name)
    if "WindowCenter" not in ds:
        ds.WindowCenter, ds.WindowWidth = [1200.0, 300.0], [800.0, 50.0]
    if function:
        ds.VOILUTFunction = function
    arr, photometric = decode_first_frame(ds)
    frame = _frame_dataset(ds, photometric)
    values = apply_modality_lut(arr, frame)
    expected = apply_voi_lut(values, copy.deepcopy(frame))
    got = _apply_voi(values, frame)
    assert got.dtype == np.float32
    span = float(expected.max() - expected.min()) or 1.0
    np.testing.assert_allclose(got, expected, atol=1e-5 * span)


def test_enhanced_multi_frame_reads_functional_groups() -> None:
    from pydicom.sequence import Sequence

    ds = chest_dataset(rows=16, columns=16, seed=6)
    raw = np.frombuffer(ds.PixelData, dtype=np.uint16).reshape(16, 16)
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([raw, raw[::-1]]).tobytes()
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = 2, -100, "US"
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transform])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for center in (3000, 7000):  # per frame: only frame 1's window applies
        voi = Dataset()
        voi.WindowCenter, voi.WindowWidth = center, 1000
        group = Dataset()
        group.FrameVOILUTSequence = Sequence([voi])
        frames.append(group)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    inp = InputSpec(name="image", shape=(-1, 1, 16, 16))
    tensor = preprocess_dataset(ds, Preprocessing(resize=Resize(size=(16, 16))), inp)[0]
    rescaled = raw.astype(np.float64) * 2 - 100
    assert (tensor[rescaled <= 2500] == 0).all()
    assert (tensor[rescaled > 3500] == 1).all()
    between = (rescaled > 2600) & (rescaled < 3400)
    assert between.any() and ((tensor[between] > 0) & (tensor[between] < 1)).all()


@pytest.mark.filterwarnings("ignore")  # pydicom warns about the damaged item, as in production
def test_a_decoder_panic_is_a_preprocess_error() -> None:
    """A damaged RLE segment makes pylibjpeg-rle panic (a ``BaseException``, found by the fuzz
    suite); the worker must see the ``PreprocessError`` it turns into "AI not available" (rule 3),
    not an exception that passes its ``except Exception`` handlers."""
    ds = pydicom.dcmread(io.BytesIO(build("CR-rle", [Flip(at=16263, xor=128)])))
    with pytest.raises(PreprocessError, match="cannot decode"):
        decode_first_frame(ds)
