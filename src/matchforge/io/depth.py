"""MegaDepth depth H5 files: dataset ``depth``, float32, undistorted image size, SfM units, 0 = invalid.

Upstream LoFTR reads them with plain ``h5py.File(p, 'r')['depth']`` and zero-pads them to 2000 x 2000
(``MGDPT_DEPTH_PAD``), asserting that the long side is at most 2000 px. So only filters that every h5py
build has are used (shuffle + deflate, LZF: no ``hdf5plugin``), and larger maps are handled by the
``oversize`` policy instead of being written silently.

The default codec, ``fast_deflate``, writes a standard *shuffle + gzip* chunked dataset, but compresses
the chunks itself (``write_direct_chunk``): after the byte shuffle a float32 chunk is four byte planes;
planes that are nearly random (low mantissa bytes of a dense map, estimated entropy above 7 bits/byte)
are stored as raw deflate blocks, the others are deflated with zlib's run-length strategy, and the pieces
are joined into one zlib stream. Mostly-invalid chunks (more than half zeros, e.g. sparse-backend maps)
skip the shuffle (HDF5's per-chunk filter mask) and are deflated at level 6: runs of equal floats and
repeated rows compress far better unshuffled. All-zero chunks are not written at all (they read back as
the fill value 0). Chunks are compressed in a thread pool (zlib releases the GIL). Any HDF5 reader decodes the result
with its built-in filters; ``bench/depth_h5.py`` compares it with the public recipe's gzip level 9.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.io.safe import DamagedFile, load_array_file
from matchforge.io.write import atomic_path
from matchforge.limits import MAX_DEPTH_PIXELS
from matchforge.depth.config import DepthH5

log = logging.getLogger(__name__)



def dataset_options(conf: DepthH5 | Mapping[str, Any] | None, shape: tuple[int, int]) -> dict[str, Any]:
    """``create_dataset`` keyword arguments for the compression settings in ``conf`` (``depth.h5`` options, parsed
    by :class:`matchforge.depth.config.DepthH5` unless they already are: missing ones take its defaults)."""
    conf = DepthH5.of(conf, "depth.h5")
    comp = conf.compression
    if comp == "none":
        return {}
    opts: dict[str, Any] = {"chunks": (min(conf.chunk, shape[0]), min(conf.chunk, shape[1])), "shuffle": conf.shuffle}
    if comp == "lzf":
        opts["compression"] = "lzf"
    elif comp == "fast_deflate":
        opts.update(compression="gzip", shuffle=True, fillvalue=np.float32(0))
    elif comp == "gzip":
        opts["compression"] = "gzip"
        opts["compression_opts"] = conf.gzip_level
    else:
        raise ValueError(f"unknown compression {comp!r} (fast_deflate, lzf, gzip, none)")
    return opts


def check_size(shape: tuple[int, int], conf: DepthH5 | Mapping[str, Any] | None, *, scene: str | None = None,
               path: str | Path | None = None) -> bool:
    """Apply the ``oversize`` policy to a depth map of ``shape``; True = write it, False = skip it.

    ``error`` raises (default: LoFTR's loader would assert at training time), ``allow`` writes it and
    warns (raise LoFTR's ``MGDPT_DEPTH_PAD`` accordingly), ``skip`` writes nothing.
    """
    conf = DepthH5.of(conf, "depth.h5")
    limit = conf.max_long_side
    long_side = max(shape)
    if limit <= 0 or long_side <= limit:
        return True
    policy = conf.oversize
    if policy == "allow":
        log.warning("%s: depth map is %dx%d, longer than %d px; upstream LoFTR pads depth to %d px and will "
                    "assert unless MGDPT_DEPTH_PAD is raised", path, shape[1], shape[0], limit, limit)
        return True
    if policy == "skip":
        log.warning("%s: depth map is %dx%d, longer than %d px; not written (depth.h5.oversize=skip)",
                    path, shape[1], shape[0], limit)
        return False
    raise MatchforgeError(
        f"depth map is {shape[1]}x{shape[0]} px, longer than depth.h5.max_long_side={limit} "
        "(upstream LoFTR zero-pads depth to 2000 px and asserts on larger maps)",
        scene=scene, path=path,
        fix="set sfm.undistort_max_image_size to 2000 or less so the undistorted images are smaller, "
            "or set depth.h5.oversize to 'allow' (and raise LoFTR's MGDPT_DEPTH_PAD) or 'skip'")


def write_depth(path: str | Path, depth: np.ndarray, conf: DepthH5 | Mapping[str, Any] | None = None,
                **attrs: Any) -> None:
    """Write ``depth`` (H x W, SfM units, 0 or NaN = invalid) as float32 dataset ``depth`` (``conf``: the ``depth.h5``
    options; a caller writing many maps parses them once into a :class:`~matchforge.depth.config.DepthH5`)."""
    conf = DepthH5.of(conf, "depth.h5")
    d = np.ascontiguousarray(depth, dtype=np.float32)
    bad = ~np.isfinite(d) | (d < 0)
    if bad.any():
        d = np.where(bad, np.float32(0), d)
    opts = dataset_options(conf, d.shape)
    with atomic_path(path, "depth H5") as tmp, h5py.File(tmp, "w") as f:
        if conf.compression == "fast_deflate":
            ds = f.create_dataset("depth", shape=d.shape, dtype=np.float32, **opts)
            _write_chunks_fast(ds, d, opts["chunks"], conf.threads)
        else:
            ds = f.create_dataset("depth", data=d, **opts)
        for key, value in attrs.items():
            ds.attrs[key] = value


_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no preset dictionary
_SKIP_SHUFFLE = 0b01  # filter mask: the pipeline is (shuffle, deflate); bit 0 set = shuffle not applied
_SPARSE_LEVEL = 6  # deflate level of mostly-zero chunks (lazy matching: close to gzip-9's size, far faster)


def _plane_entropy(plane: np.ndarray) -> float:
    """Shannon entropy (bits/byte) of a subsample of one byte plane."""
    counts = np.bincount(plane[::32], minlength=256)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _deflate_shuffled(block: np.ndarray) -> bytes:
    """zlib stream of ``block`` (float32) after HDF5's byte shuffle, one deflate piece per byte plane."""
    planes = block.view(np.uint8).reshape(-1, 4).T
    pieces, adler = [_ZLIB_HEADER], 1
    for k in range(4):
        data = planes[k].tobytes()
        adler = zlib.adler32(data, adler)
        if _plane_entropy(planes[k]) > 7.0:  # Huffman would save under 1/8: store
            comp = zlib.compressobj(0, zlib.DEFLATED, -15)
        else:
            comp = zlib.compressobj(1, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
        pieces.append(comp.compress(data))
        pieces.append(comp.flush(zlib.Z_FINISH if k == 3 else zlib.Z_SYNC_FLUSH))
    pieces.append(struct.pack(">I", adler))
    return b"".join(pieces)


def _write_chunks_fast(ds: h5py.Dataset, d: np.ndarray, chunks: tuple[int, int], threads: int) -> None:
    ch, cw = chunks
    h, w = d.shape
    nr, nc = -(-h // ch), -(-w // cw)
    # valid pixels per chunk in one pass (slicing chunk by chunk is slow for a strided float view)
    mask = np.zeros((nr * ch, nc * cw), np.uint8)
    mask[:h, :w] = d != 0
    counts = mask.reshape(nr, ch, nc, cw).sum(axis=(1, 3), dtype=np.int64)
    offsets = [(i * ch, j * cw) for i in range(nr) for j in range(nc) if counts[i, j]]

    def compress(offset: tuple[int, int]) -> tuple[bytes, int]:
        r, c = offset
        part = d[r:r + ch, c:c + cw]
        block = np.zeros((ch, cw), np.float32)  # edge chunks are stored at full chunk size
        block[:part.shape[0], :part.shape[1]] = part
        if counts[r // ch, c // cw] < part.size // 2:
            return zlib.compress(block.tobytes(), _SPARSE_LEVEL), _SKIP_SHUFFLE
        return _deflate_shuffled(block), 0

    workers = threads if threads > 0 else min(8, os.cpu_count() or 1)
    if workers > 1 and len(offsets) > 1:
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(compress, offsets))
    else:
        results = [compress(o) for o in offsets]
    for offset, (data, mask_bits) in zip(offsets, results):
        ds.id.write_direct_chunk(offset, data, filter_mask=mask_bits)


def rebuild_hint(path: str | Path) -> str:
    """The command that rebuilds the depth H5 at ``path``: for ``results/<scene>/depth/h5/<stem>.h5`` (also
    reached through a dataset's links) the Snakemake call that reruns that scene's ``depth_align`` job."""
    real = Path(path).resolve()
    if real.parent.name == "h5" and real.parents[1].name == "depth" and real.parents[3].name == "results":
        scene = real.parents[2].name
        from matchforge.conf import snakemake_command

        command = snakemake_command("--cores all --forcerun depth_align", f"results/{scene}/depth/align.json")
        return f"rebuild it with `{command}`, then run snakemake as before (the jobs after it rerun)"
    return "rebuild it with `matchforge align-depth` (or the tool that wrote it)"


def _damaged(path: str | Path, err: BaseException, scene: str | None = None) -> DamagedFile:
    reason = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
    return DamagedFile(f"the depth file cannot be read ({reason}): it is damaged (cut short, overwritten) or not "
                       "a MegaDepth H5 with a float dataset 'depth'", scene=scene, path=path, fix=rebuild_hint(path))


def read_depth(path: str | Path, *, scene: str | None = None) -> np.ndarray:
    """Dataset ``depth`` of a MegaDepth H5 as float32 (0 = invalid), exactly as the LoFTR loader sees it.

    A file that does not read raises :class:`~matchforge.io.safe.DamagedFile` with the command that rebuilds it.
    """
    try:
        with h5py.File(path, "r") as f:
            return np.asarray(_depth_dataset(f), dtype=np.float32)
    except (OSError, KeyError, ValueError, TypeError) as err:
        raise _damaged(path, err, scene) from None


def _depth_dataset(f: h5py.File) -> h5py.Dataset:
    """Dataset ``depth``, checked from its header before anything is decompressed: two dimensions, at most
    :data:`~matchforge.limits.MAX_DEPTH_PIXELS` (a few KB of compressed zeros can claim terabytes)."""
    dset = f["depth"]
    if not isinstance(dset, h5py.Dataset) or dset.ndim != 2:
        raise ValueError(f"'depth' is {type(dset).__name__} of shape {getattr(dset, 'shape', None)}, not an image")
    if dset.size > MAX_DEPTH_PIXELS:
        raise ValueError(f"'depth' claims {dset.shape[1]}x{dset.shape[0]} px, over the limit of "
                         f"{MAX_DEPTH_PIXELS / 1e6:.0f} MP")
    return dset


def read_depth_padded(path: str | Path, pad_to: int | None, square: bool = True) -> np.ndarray:
    """Depth (H, W) float32 in metres or SfM units, 0 = invalid, zero-padded to ``pad_to`` square.

    Reads MegaDepth H5 (dataset ``depth``) straight into the padded buffer (one copy), or a ScanNet
    16-bit PNG in millimetres. Non-finite values become 0. The padding is what LoFTR's loader does
    (``MGDPT_DEPTH_PAD``) so that depth maps of different sizes batch together. ``square=False``: checked against
    ``pad_to`` but returned at its own size (:func:`matchforge.loftr.data.collate_pairs` pads the batch).
    """
    limit, pad_to = pad_to, pad_to if square else None
    path = Path(path)
    if path.suffix.lower() in (".h5", ".hdf5"):
        try:
            with h5py.File(path, "r") as f:
                dset = _depth_dataset(f)
                h, w = dset.shape
                _check_pad(path, w, h, limit)
                if pad_to:
                    depth = np.zeros((pad_to, pad_to), dtype=np.float32)
                    if dset.dtype == np.float32:
                        dset.read_direct(depth, dest_sel=np.s_[:h, :w])
                    else:
                        depth[:h, :w] = dset[()]
                else:
                    depth = np.asarray(dset[()], dtype=np.float32)
        except (OSError, KeyError, ValueError, TypeError) as err:
            raise _damaged(path, err) from None
    else:
        from matchforge.io.images import read_image

        raw = read_image(path, "unchanged", fix="check the dataset's depth folder")
        h, w = raw.shape[:2]
        _check_pad(path, w, h, limit)
        depth = np.zeros((pad_to, pad_to), dtype=np.float32) if pad_to else np.empty((h, w), dtype=np.float32)
        np.divide(raw, 1000.0, out=depth[:h, :w], casting="unsafe")  # ScanNet: millimetres
    valid = depth[:h, :w]
    if not np.isfinite(valid).all():
        np.nan_to_num(valid, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return depth


def _check_pad(path: Path, w: int, h: int, pad_to: int | None) -> None:
    if pad_to and (h > pad_to or w > pad_to):
        raise MatchforgeError(f"depth map is {w}x{h}, larger than depth_max_size={pad_to}", path=path,
                              fix="raise loftr data option depth_max_size, or undistort images to a smaller size")


def read_depth_file(path: str | Path) -> np.ndarray:
    """Any single depth map as float64 in its own units: ``.npy``, ``.npz`` (``depth`` or ``arr_0``),
    ``.h5`` (``depth``) or a 16-bit ``.png`` (raw integer values)."""
    path = Path(path)
    if path.suffix == ".npy":
        return np.asarray(load_array_file(path, "depth map"), dtype=np.float64)
    if path.suffix == ".npz":
        arrays = load_array_file(path, "depth map")
        return np.asarray(arrays["depth" if "depth" in arrays else "arr_0"], dtype=np.float64)
    if path.suffix in (".h5", ".hdf5"):
        return read_depth(path).astype(np.float64)
    if path.suffix == ".png":
        from matchforge.io.images import read_image

        img = read_image(path, "unchanged", required=False)
        if img is not None:
            return img.astype(np.float64)
    raise MatchforgeError("cannot read depth", fix="give .npy, .npz (arr_0/depth), .h5 (depth) or a 16-bit .png", path=path)
