"""Minimal safetensors writer and reader for the reference-making scripts (standard library + NumPy).

Used only on a developer's machine to produce the small reference files under tests/data/; the tests
themselves read those files with i2v's own C reader."""
import json
import struct

import numpy as np

_DTYPES = {np.dtype("float32"): "F32", np.dtype("float64"): "F64", np.dtype("int64"): "I64",
           np.dtype("int32"): "I32", np.dtype("uint8"): "U8", np.dtype("bool"): "BOOL",
           np.dtype("float16"): "F16"}


def save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array (C order). Writes names sorted, as the reference library does."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.asarray(tensors[name])   # (np.ascontiguousarray would turn a 0-D array into 1-D)
        if not a.flags.c_contiguous:
            a = a.copy(order="C")
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": _DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
