#!/usr/bin/env python3
"""Writes tests/data/data/example.tfrecords: a small TFRecord file whose tf.train.Example messages exercise
every case tests/test_data.c checks in the C reader (tfrecord.c): bytes lists, packed and unpacked float
lists, packed and unpacked int64 lists (negative values, values above 2^32), an empty Feature, an unknown
field, a repeated map key (the last entry wins) and an empty record.

It uses only the Python standard library: its own protobuf wire-format encoder and its own CRC-32C, both
written from the specifications (protobuf encoding guide; TFRecord format: uint64 length, uint32 masked
crc32c(length), data, uint32 masked crc32c(data)), so the C reader is checked against an independent
writer and TensorFlow is never needed.

Usage: python3 tools/make_tfrecord_fixture.py [output]   (default tests/data/data/example.tfrecords)
"""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def varint(v):
    v &= (1 << 64) - 1  # negative int64 values are written as 10-byte two's complement varints
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def tag(field, wire_type):
    return varint(field << 3 | wire_type)


def ld(field, payload):  # length-delimited field
    return tag(field, 2) + varint(len(payload)) + payload


def bytes_list(values):
    return b"".join(ld(1, v) for v in values)


def float_list(values, packed):
    if packed:
        return ld(1, b"".join(struct.pack("<f", v) for v in values))
    return b"".join(tag(1, 5) + struct.pack("<f", v) for v in values)


def int64_list(values, packed):
    if packed:
        return ld(1, b"".join(varint(v) for v in values))
    return b"".join(tag(1, 0) + varint(v) for v in values)


def feature(kind, payload):  # Feature { bytes_list = 1; float_list = 2; int64_list = 3 }
    return ld(kind, payload) if kind else b""


def example(entries, extra=b""):
    feats = b"".join(ld(1, ld(1, key.encode()) + ld(2, feat)) for key, feat in entries)
    return ld(1, feats) + extra


def record(data):
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc(length)) + data + struct.pack("<I", masked_crc(data))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/data/data/example.tfrecords"
    rec1 = example([
        ("a/bytes", feature(1, bytes_list([b"hello", b"", bytes(range(256))]))),
        ("f/packed", feature(2, float_list([1.5, -2.25, 3e-5], True))),
        ("f/unpacked", feature(2, float_list([0.5, 7.0], False))),
        ("i/packed", feature(3, int64_list([1, -1, 300, 1 << 40], True))),
        ("i/unpacked", feature(3, int64_list([5, -7], False))),
        ("empty", feature(0, b"")),
        ("dup", feature(3, int64_list([1], True))),
        ("dup", feature(3, int64_list([2], True))),
    ], extra=tag(7, 0) + varint(42))  # an unknown field after `features`: skipped
    # record 2: a BAIR-style key with 3 packed floats; record 3: an empty Example
    rec2 = example([("0/endeffector_pos", feature(2, float_list([0.25, -0.125, 0.0625], True)))])
    rec3 = b""
    with open(out, "wb") as f:
        f.write(record(rec1) + record(rec2) + record(rec3))


if __name__ == "__main__":
    main()
