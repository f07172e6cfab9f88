#!/usr/bin/env python3
"""Writes fixture.safetensors, the hand-made file tests/test_safetensors.c reads.

Only the standard library (struct, json): the bytes follow the safetensors layout directly, so the test
checks the C reader against an independent writer. Deliberate quirks: keys are not sorted, the data is
not in key order and not aligned (a U8 tensor comes first), the JSON has spaces after separators and
non-ASCII text as \\u escapes (json's default), and the header is padded with spaces.
Run from the repository root: python3 tests/data/make_fixture.py
"""
import json
import os
import struct

# (name, dtype, shape, raw little-endian bytes)
tensors = [
    ("u8", "U8", [4], bytes([0, 1, 200, 255])),
    ("f64", "F64", [3], struct.pack("<3d", 0.1, -1e10, 2.5)),
    ("half", "F16", [2, 4], struct.pack("<8e", 1.0, -2.0, 0.5, 65504.0, 2.0 ** -24, -0.0, float("inf"), 1 / 3)),
    # bfloat16 bit patterns: 1.0, -2.5, the largest finite, the smallest subnormal, 0.333984375
    ("brain", "BF16", [5], struct.pack("<5H", 0x3F80, 0xC020, 0x7F7F, 0x0001, 0x3EAB)),
    ("f32", "F32", [], struct.pack("<f", 3.5)),
    ("i64", "I64", [3], struct.pack("<3q", -1, 2 ** 40, -(2 ** 63))),
    ("i32", "I32", [2, 2], struct.pack("<4i", 7, -7, 2 ** 31 - 1, -(2 ** 31))),
    ("i16", "I16", [2], struct.pack("<2h", -300, 300)),
    ("flag", "BOOL", [3], bytes([1, 0, 1])),
    ("empty", "F32", [0, 3], b""),
    ("\u00fcn\u00ef", "F32", [1], struct.pack("<f", 1.25)),
]

header = {}
data = b""
for name, dtype, shape, raw in tensors:
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
    data += raw
header["__metadata__"] = {
    "format": "pt",
    "note": "quote \" backslash \\ newline \n tab \t",
    "emoji": "\U0001F600 \u00e9",
}
# an order that is neither sorted nor the data order
order = ["half", "__metadata__", "u8", "\u00fcn\u00ef", "i64", "brain", "f32", "flag", "f64", "empty", "i32", "i16"]
text = json.dumps({k: header[k] for k in order}).encode("utf-8")
text += b" " * (-len(text) % 8)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixture.safetensors")
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
print(out, 8 + len(text) + len(data), "bytes")
