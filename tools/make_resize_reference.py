"""Writes tests/data/resize_reference.safetensors: inputs and outputs of the three bilinear resizes at odd sizes.

align_corners=True and align_corners=False come from PyTorch's F.interpolate (mode='bilinear', float64, CPU);
TensorFlow 1's tf.image.resize_bilinear (align_corners=False, half_pixel_centers=False) is re-implemented below
from its documented formula (source = dst * in / out, weights computed in float32 as its kernel does), since
the tests must not need TensorFlow. tests/test_resize.c reads the file.

usage: python3 tools/make_resize_reference.py [out.safetensors]
Needs PyTorch (Debian's python3-torch); the tests never do.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                         "resize_reference.safetensors")


def tf1_axis(n_in, n_out):
    scale = np.float32(n_in) / np.float32(n_out)
    src = np.arange(n_out, dtype=np.float32) * scale
    lo = np.floor(src)
    w = (src - lo).astype(np.float64)
    lo = lo.astype(np.int64)
    hi = np.minimum(np.ceil(src).astype(np.int64), n_in - 1)
    lo = np.minimum(lo, n_in - 1)
    return lo, hi, w


def tf1_resize(x, oh, ow):
    """x (..., H, W) float64 -> (..., oh, ow): top = tl + (tr - tl) xl; bottom likewise; top + (bottom - top) yl."""
    ylo, yhi, yw = tf1_axis(x.shape[-2], oh)
    xlo, xhi, xw = tf1_axis(x.shape[-1], ow)
    tl = x[..., ylo, :][..., :, xlo]
    tr = x[..., ylo, :][..., :, xhi]
    bl = x[..., yhi, :][..., :, xlo]
    br = x[..., yhi, :][..., :, xhi]
    top = tl + (tr - tl) * xw
    bottom = bl + (br - bl) * xw
    return top + (bottom - top) * yw[:, None]


# (nc, ih, iw, oh, ow): up, down, mixed, to one row/column, identity size, BAIR's 64 -> 224 shape class
CASES = [(3, 5, 7, 11, 13), (2, 13, 9, 4, 6), (2, 6, 11, 9, 5), (1, 7, 5, 1, 3), (2, 5, 3, 5, 3),
         (1, 9, 9, 31, 31)]
rng = np.random.default_rng(2021)
tensors = {}
for k, (nc, ih, iw, oh, ow) in enumerate(CASES):
    x = rng.uniform(-1, 1, size=(nc, ih, iw))
    xt = torch.from_numpy(x)[None]
    tensors["case%d.x" % k] = x
    tensors["case%d.size" % k] = np.array([oh, ow], dtype=np.int64)
    tensors["case%d.align_corners" % k] = F.interpolate(xt, size=(oh, ow), mode="bilinear",
                                                        align_corners=True)[0].numpy()
    tensors["case%d.half_pixel" % k] = F.interpolate(xt, size=(oh, ow), mode="bilinear",
                                                     align_corners=False)[0].numpy()
    tensors["case%d.tf1" % k] = tf1_resize(x, oh, ow)

safetensors_io.save(out, tensors, {"cases": len(CASES), "torch": torch.__version__})
print("wrote", out)
