"""Read files a user may have downloaded without ever running code from them.

Checkpoints (``.ckpt``/``.pt``/``.pth``), pair indices (``.npz`` that are really pickled dicts, as the
official LoFTR scene-info files are, and real ``np.savez`` archives) and ``.npy`` arrays all use pickle
somewhere, and a pickle can name any importable callable to be run while it loads. Every such file
that matchforge reads goes through this module:

- :func:`load_torch`: ``torch.load(weights_only=True)``: tensors, numbers, strings and plain containers.
  Official LoFTR Lightning checkpoints also name Lightning's callback classes (as dictionary keys of
  their ``callbacks`` entry); those names, and only those (:data:`CHECKPOINT_NAMES`), resolve to an inert
  placeholder class, so nothing of Lightning (or anything else) is imported or called.
- :func:`load_pickle`: a restricted unpickler that admits numpy arrays, numpy scalars and dtypes and
  builtin containers (:data:`NUMPY_GLOBALS`) and nothing else.
- :func:`load_array_file`: ``.npz``/``.npy`` of either kind (zip archive, raw pickle, ``.npy`` with object
  arrays), object arrays through the same restricted unpickler.

Anything else in a file is refused with a :class:`~matchforge.errors.MatchforgeError` that names the file
and the global it asked for; the payload never runs. A damaged file (truncated archive or pickle) is
:class:`DamagedFile`, a ``MatchforgeError`` that callers can tell apart (training moves it aside).
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.limits import MAX_INFLATED

# Official (PyTorch Lightning 1.x) checkpoints key their callback states by the callback's class.
CHECKPOINT_NAMES = tuple(
    f"{package}.callbacks.{module}.{name}"
    for package in ("pytorch_lightning", "lightning.pytorch")
    for module, name in (("model_checkpoint", "ModelCheckpoint"), ("lr_monitor", "LearningRateMonitor"),
                         ("early_stopping", "EarlyStopping"), ("progress", "ProgressBar"))
)

# What numpy's own pickles of arrays, dtypes and scalars name (numpy 1.x and 2.x module paths).
NUMPY_GLOBALS = frozenset(
    [(m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")]
    + [(m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")]
    + [("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")]
    + [("builtins", n) for n in ("set", "frozenset", "slice", "complex", "bytearray", "range")]
    + [("collections", "OrderedDict")]
)
_DTYPE_CLASS = re.compile(r"^numpy(\._core|\.core)?\.?(dtypes)?$")


class DamagedFile(MatchforgeError):
    """The file is not readable as what it claims to be (truncated, overwritten, not the format)."""


class _Placeholder:
    """Stands in for a class an official checkpoint names; holds nothing and runs nothing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _placeholder(full_name: str) -> type:
    module, _, name = full_name.rpartition(".")
    return type(name, (_Placeholder,), {"__module__": module, "__qualname__": name})


_CHECKPOINT_ALLOWLIST = [(_placeholder(n), n) for n in CHECKPOINT_NAMES]


def _refused(path: Path, what: str, found: str, arrays: bool = False) -> MatchforgeError:
    how = ("np.savez(path, **arrays) with numeric arrays" if arrays else
           "torch.save(model.state_dict())")
    return MatchforgeError(
        f"refused to load {what}: the file asks to import {found}, which a plain {what} never holds; "
        "loading it could run code, so nothing was loaded",
        path=path, fix="use a file written by matchforge or by the official release; if you made this file "
                       f"yourself, save only arrays and plain containers ({how})")


def require_regular(path: Path, what: str) -> None:
    """A readable regular file, or a MatchforgeError: missing, or a device, FIFO or socket (never read: /dev/zero
    would be read until memory runs out)."""
    from matchforge.io.files import not_regular

    special = not_regular(path)
    if special:
        raise MatchforgeError(f"{what} is {special}", path=path, fix="point the option at the file itself")
    if not path.is_file():
        raise MatchforgeError(f"{what} not found", path=path, fix="check the path")


def load_torch(path: str | Path, what: str = "checkpoint", mmap: bool = False) -> Any:
    """``torch.load`` of ``path`` on the CPU without running code from it (see the module docstring).

    Raises :class:`DamagedFile` for a file torch cannot read at all, and a ``MatchforgeError`` naming the
    offending global for one that holds more than weights.
    """
    import torch

    path = Path(path)
    require_regular(path, what)
    try:
        with torch.serialization.safe_globals(_CHECKPOINT_ALLOWLIST):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)", str(err))
        if found or "Unsupported operand" in str(err) or "Unsupported class" in str(err):
            raise _refused(path, what, found.group(1) if found else "a callable") from None
        raise DamagedFile(f"{what} is damaged or not a torch file ({_first_line(err)})", path=path,
                          fix="it was cut short or overwritten: delete it and write or download it again") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError) as err:
        raise DamagedFile(f"{what} is damaged or not a torch file ({type(err).__name__}: {_first_line(err)})",
                          path=path, fix="it was cut short or overwritten: delete it and write or download it again") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays/scalars/dtypes and builtin containers; any other global is refused."""

    def __init__(self, file: BinaryIO, path: Path, what: str):
        super().__init__(file, encoding="latin1")  # Python 2 pickles of numpy arrays, as np.load does
        self._path, self._what = path, what

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in NUMPY_GLOBALS:
            return super().find_class(module, name)
        if _DTYPE_CLASS.match(module) and name.endswith("DType"):  # numpy 2 pickles dtypes by class
            return super().find_class(module, name)
        raise _refused(self._path, self._what, f"{module}.{name}", arrays=True)

    def persistent_load(self, pid: Any) -> Any:
        raise _refused(self._path, self._what, "a persistent object", arrays=True)


def load_pickle(path: str | Path, what: str = "index file", data: bytes | None = None) -> Any:
    """A pickle holding only numpy arrays/scalars and builtin containers (the official scene-info files)."""
    path = Path(path)
    raw = path.read_bytes() if data is None else data
    try:
        return _NumpyOnlyUnpickler(io.BytesIO(raw), path, what).load()
    except MatchforgeError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, AttributeError, KeyError) as err:
        raise DamagedFile(f"{what} is damaged or not a pickle ({type(err).__name__}: {_first_line(err)})", path=path,
                          fix="it was cut short or overwritten: write or download it again") from None


def _read_npy(fp: io.BytesIO, path: Path, what: str) -> np.ndarray:
    version = np.lib.format.read_magic(fp)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(fp)
    if not dtype.hasobject:
        claimed, held = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize, len(fp.getbuffer()) - fp.tell()
        if claimed > held:  # numpy would allocate the claimed size before reading
            raise DamagedFile(f"{what} claims an array of {shape} {dtype} ({claimed} bytes) but holds {held}",
                              path=path, fix="it was cut short or overwritten: write or download it again")
        fp.seek(0)
        return np.lib.format.read_array(fp, allow_pickle=False)
    array = _NumpyOnlyUnpickler(fp, path, what).load()
    if not isinstance(array, np.ndarray):
        raise _refused(path, what, type(array).__name__, arrays=True)
    return array.reshape(shape, order="F" if fortran else "C")


def load_array_file(path: str | Path, what: str = "index file") -> Any:
    """The content of a ``.npz`` or ``.npy`` without running code from it.

    - a pickled object with an ``.npz`` name (the official LoFTR scene-info files): what it holds;
    - a zip archive (``np.savez``): a dict of its arrays (object arrays read through the restricted unpickler);
    - a ``.npy``: its array.
    """
    path = Path(path)
    require_regular(path, what)
    raw = path.read_bytes()
    try:
        if raw.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                inflated = sum(info.file_size for info in archive.infolist())
                if inflated > MAX_INFLATED:  # checked before anything is inflated: a zip bomb stops here
                    biggest = max(archive.infolist(), key=lambda i: i.file_size)
                    raise MatchforgeError(
                        f"{what} would expand to {inflated / 2**30:.1f} GiB ({biggest.filename}: "
                        f"{biggest.file_size / 2**30:.1f} GiB from {biggest.compress_size / 2**20:.1f} MiB), over the "
                        f"{MAX_INFLATED / 2**30:.0f} GiB limit of an array file", path=path,
                        fix="an index or scene-info file holds MBs: this one is damaged or not what it claims; "
                            "write or download it again")
                return {name.removesuffix(".npy"): _read_npy(io.BytesIO(archive.read(name)), path, what)
                        for name in archive.namelist()}
        if raw.startswith(b"\x93NUMPY"):
            return _read_npy(io.BytesIO(raw), path, what)
    except MatchforgeError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise DamagedFile(f"{what} is damaged ({type(err).__name__}: {_first_line(err)})", path=path,
                          fix="it was cut short or overwritten: write or download it again") from None
    return load_pickle(path, what, data=raw)
