#!/usr/bin/env python3
"""make_codec_fixtures.py: writes the small image and array fixtures under tests/data/ that test_image.c,
test_jpeg.c and test_fuzz_codecs.c read. Run once by hand (never by make or the tests):

    apt-get install -y python3-pil python3-numpy libjpeg-turbo-progs
    /usr/bin/python3 tools/make_codec_fixtures.py

(The committed fixtures were made with PIL 9.4, NumPy 1.24, zlib 1.2.13 and libjpeg-turbo 2.1.5.)

What it makes and why:
  tests/data/png/*.png   every colour type and bit depth, PLTE + tRNS, Adam7 interlacing, all five filter
                         types, stored / fixed / dynamic deflate blocks and split IDATs. The PNGs are written
                         here by hand (zlib + struct) so each feature is present on purpose; each is checked
                         against PIL's decoder where PIL can read the mode. Next to each, <name>.raw holds the
                         pixels our decoder must return (8-bit samples, or 16-bit big-endian), and
                         png/manifest.txt lists name, width, height, channels, depth.
  tests/data/png/natural.png, synth.png
                         a natural-looking 64x64 (1/f noise + shapes) and a synthetic 128x128 RGB image saved
                         by PIL at zlib level 6; their sizes are the reference of the compression-ratio test.
  tests/data/jpeg/*.jpg  made by cjpeg from one natural-looking 45x33 source: baseline 4:4:4, 4:2:2, 4:2:0,
                         4:4:0, 4:1:1, grey, restart intervals (rows and blocks), progressive, non-interleaved
                         sequential scans, RGB (Adobe transform 0), and an arithmetic-coded file (must be
                         rejected). Next to each, <name>.ppm / .pgm is djpeg's output with default settings
                         (fancy upsampling, islow IDCT), the reference the decoder is compared with.
  tests/data/npy/        numpy.save outputs (float32, uint8), a hand-written version 2.0 header, and files
                         that must be rejected (Fortran order, big-endian, float64).
  tests/data/ppm/        hand-written P5/P6 with comments and non-standard maxvals.
  tests/data/gif/anim.gif a 3-frame GIF written by PIL, with anim.raw = its frames (T, H, W, 3) as PIL reads
                         them, for the GIF reader.
"""
import os
import struct
import subprocess
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


def out(*parts):
    p = os.path.join(ROOT, *parts)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    return p


# ---------------------------------------------------------------------------------------------------------
# PNG by hand
# ---------------------------------------------------------------------------------------------------------

def chunk(t, data):
    c = struct.pack(">I", len(data)) + t + data
    return c + struct.pack(">I", zlib.crc32(t + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    """samples: 1-D array of unsigned samples of one row (all channels interleaved)."""
    if depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if depth == 8:
        return bytes(int(v) for v in samples)
    per = 8 // depth
    out_b = bytearray()
    for i in range(0, len(samples), per):
        byte = 0
        group = list(samples[i:i + per]) + [0] * (per - len(samples[i:i + per]))
        for v in group:
            byte = (byte << depth) | int(v)
        out_b.append(byte)
    return bytes(out_b)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_rows(rows, bpp, mode):
    """rows: list of bytes; mode 'cycle' uses filter y % 5 (all five types), 'none' uses 0."""
    res = bytearray()
    prior = bytes(len(rows[0])) if rows else b""
    for y, r in enumerate(rows):
        f = y % 5 if mode == "cycle" else 0
        res.append(f)
        for i, x in enumerate(r):
            a = r[i - bpp] if i >= bpp else 0
            b = prior[i]
            c = prior[i - bpp] if i >= bpp else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][f]
            res.append((x - pred) & 255)
        prior = r
    return bytes(res)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def write_png(path, raw, ctype, depth, plte=None, trns=None, interlace=0, filt="cycle", level=6,
              strategy=zlib.Z_DEFAULT_STRATEGY, idat_split=None):
    """raw: (H, W, spp) array of file-native samples (palette indices for ctype 3)."""
    h, w, spp = raw.shape
    bits_pp = depth * spp
    bpp = max(1, bits_pp // 8)
    data = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for (x0, y0, dx, dy) in passes:
        sub = raw[y0::dy, x0::dx, :]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        rows = [pack_row(sub[y].reshape(-1), depth) for y in range(sub.shape[0])]
        data += filter_rows(rows, bpp, filt)
    co = zlib.compressobj(level, zlib.DEFLATED, 15, 8, strategy)
    z = co.compress(data) + co.flush()
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
    png += chunk(b"tEXt", b"Comment\x00i2v codec fixture")
    if plte is not None:
        png += chunk(b"PLTE", bytes(int(v) for v in np.asarray(plte).reshape(-1)))
    if trns is not None:
        png += chunk(b"tRNS", trns)
    if idat_split:
        for i in range(0, len(z), idat_split):
            png += chunk(b"IDAT", z[i:i + idat_split])
    else:
        png += chunk(b"IDAT", z)
    png += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def expected_png(raw, ctype, depth, plte=None, trns=None):
    """What png_decode returns: (H, W, C) array and its depth."""
    h, w, spp = raw.shape
    if ctype == 3:
        pal = np.asarray(plte, dtype=np.int64).reshape(-1, 3)
        rgb = pal[raw[:, :, 0]]
        if trns is not None:
            alpha = np.full(len(pal), 255, dtype=np.int64)
            alpha[:len(trns)] = list(trns)
            return np.concatenate([rgb, alpha[raw[:, :, 0]][:, :, None]], axis=2), 8
        return rgb, 8
    v = raw.astype(np.int64)
    maxv = (1 << depth) - 1
    res = v * (255 // maxv) if depth < 8 else v
    if trns is not None:
        key = np.array([struct.unpack(">H", trns[2 * i:2 * i + 2])[0] for i in range(spp)])
        match = np.all(v == key[None, None, :], axis=2)
        alpha = np.where(match, 0, 255 if depth <= 8 else 65535)
        res = np.concatenate([res, alpha[:, :, None]], axis=2)
    return res, (16 if depth == 16 else 8)


def pil_check(path, exp, depth, grey_key_below_8=False):
    """Decodes with PIL where it represents the data without loss, and compares. PIL compares the tRNS key
    of 1/2/4-bit grey with the scaled samples instead of the raw ones (the PNG spec and libpng compare raw
    samples), so there only the grey channel is checked."""
    im = Image.open(path)
    im.load()
    c = exp.shape[2]
    if grey_key_below_8:
        got = np.asarray(im.convert("L")).astype(np.int64)
        assert np.array_equal(got, exp[:, :, 0]), path
        return
    if depth == 16:
        if im.mode in ("I;16", "I;16B", "I") and c == 1:
            got = np.asarray(im).astype(np.int64)
            assert np.array_equal(got, exp[:, :, 0]), path
        return
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[c]
    got = np.asarray(im.convert(mode)).astype(np.int64)
    if c == 1:
        got = got[:, :, None]
    assert np.array_equal(got, exp), path


def make_pngs():
    rng = np.random.default_rng(7)
    manifest = []
    W, H = 13, 11

    def case(name, ctype, depth, spp, plte=None, trns=None, w=W, h=H, **kw):
        hi = (1 << depth) - 1
        if ctype == 3:
            hi = len(np.asarray(plte).reshape(-1)) // 3 - 1
        # a mix of a gradient and noise so every filter type has work to do
        yy, xx = np.mgrid[0:h, 0:w]
        raw = np.zeros((h, w, spp), dtype=np.int64)
        for s in range(spp):
            grad = ((xx * 7 + yy * 3 + s * 5) * hi) // (w * 7 + h * 3 + 10)
            noise = rng.integers(0, hi + 1, size=(h, w))
            raw[:, :, s] = np.where(rng.random((h, w)) < 0.3, noise, grad)
        if trns is not None and ctype in (0, 2):
            key = [struct.unpack(">H", trns[2 * i:2 * i + 2])[0] for i in range(spp)]
            raw[2, 3, :] = key   # make sure the key colour occurs
            raw[5, :4, :] = key
        p = out("png", name + ".png")
        write_png(p, raw, ctype, depth, plte, trns, **kw)
        exp, od = expected_png(raw, ctype, depth, plte, trns)
        pil_check(p, exp, od, trns is not None and ctype == 0 and depth < 8)
        if od == 16:
            data = b"".join(struct.pack(">H", int(v)) for v in exp.reshape(-1))
        else:
            data = bytes(int(v) for v in exp.reshape(-1))
        with open(out("png", name + ".raw"), "wb") as f:
            f.write(data)
        manifest.append("%s %d %d %d %d" % (name, w, h, exp.shape[2], od))

    pal4 = rng.integers(0, 256, size=(4, 3))
    pal16 = rng.integers(0, 256, size=(16, 3))
    pal200 = rng.integers(0, 256, size=(200, 3))
    for d in (1, 2, 4, 8, 16):
        case("grey%d" % d, 0, d, 1)
    case("rgb8", 2, 8, 3)
    case("rgb16", 2, 16, 3)
    case("pal1", 3, 1, 1, plte=pal4[:2])
    case("pal2", 3, 2, 1, plte=pal4)
    case("pal4", 3, 4, 1, plte=pal16)
    case("pal8", 3, 8, 1, plte=pal200)
    case("ga8", 4, 8, 2)
    case("ga16", 4, 16, 2)
    case("rgba8", 6, 8, 4)
    case("rgba16", 6, 16, 4)
    case("pal8_trns", 3, 8, 1, plte=pal200, trns=bytes(int(v) for v in rng.integers(0, 256, size=150)))
    case("pal2_trns", 3, 2, 1, plte=pal4, trns=b"\x00\x80")
    case("grey8_trns", 0, 8, 1, trns=struct.pack(">H", 77))
    case("grey4_trns", 0, 4, 1, trns=struct.pack(">H", 9))
    case("rgb8_trns", 2, 8, 3, trns=struct.pack(">HHH", 10, 20, 30))
    case("rgb16_trns", 2, 16, 3, trns=struct.pack(">HHH", 1000, 2000, 3000))
    case("rgb8_adam7", 2, 8, 3, interlace=1)
    case("grey2_adam7", 0, 2, 1, interlace=1, w=17, h=9)
    case("rgba16_adam7", 6, 16, 4, interlace=1, w=9, h=10)
    case("pal4_adam7", 3, 4, 1, plte=pal16, interlace=1, w=3, h=2)   # several Adam7 passes are empty
    case("grey8_1x1_adam7", 0, 8, 1, interlace=1, w=1, h=1)
    case("rgb8_stored", 2, 8, 3, level=0)
    case("rgb8_fixed", 2, 8, 3, strategy=zlib.Z_FIXED)
    case("rgb8_split", 2, 8, 3, idat_split=37, w=40, h=30)
    case("rgb8_nofilter", 2, 8, 3, filt="none", level=9)
    with open(out("png", "manifest.txt"), "w") as f:
        f.write("# name width height channels depth: the expected pixels of <name>.png are in <name>.raw\n")
        f.write("\n".join(manifest) + "\n")


# ---------------------------------------------------------------------------------------------------------
# natural-looking and synthetic images
# ---------------------------------------------------------------------------------------------------------

def plasma(rng, h, w, beta):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    spec = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / f ** (beta / 2)
    spec[0, 0] = 0
    img = np.real(np.fft.ifft2(spec))
    return (img - img.min()) / (img.max() - img.min())


def natural(seed, h, w):
    """1/f^2 'terrain' colours, a few soft-edged objects, fine texture and sensor noise."""
    rng = np.random.default_rng(seed)
    base = plasma(rng, h, w, 2.2)
    tint = plasma(rng, h, w, 2.0)
    tex = plasma(rng, h, w, 1.0)
    sky = np.array([110, 150, 200.0])
    ground = np.array([90, 120, 60.0])
    img = base[:, :, None] * sky + (1 - base[:, :, None]) * ground
    img += (tint[:, :, None] - 0.5) * np.array([60, 30, -40.0])
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(min(h, w) / 10, min(h, w) / 3)
        col = rng.uniform(20, 235, size=3)
        m = np.clip(r - np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2), 0, 1.5) / 1.5
        img = img * (1 - m[:, :, None]) + col * m[:, :, None]
    img += (tex[:, :, None] - 0.5) * 25 + rng.normal(0, 2.0, size=img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def synthetic(h, w):
    """Integer formulas the C test can reproduce exactly (see synth_pixel in tests/test_image.c)."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = (xx * 2 + yy) & 255
    g = ((xx // 8 + yy // 8) % 2) * 200 + 20
    b = np.where((xx - 64) ** 2 + (yy - 64) ** 2 < 40 * 40, 230, (yy * 2) & 255)
    return np.stack([r, g, b], axis=2).astype(np.uint8)


def make_ratio_fixtures():
    sizes = []
    for name, img in (("natural", natural(11, 64, 64)), ("synth", synthetic(128, 128))):
        p = out("png", name + ".png")
        Image.fromarray(img, "RGB").save(p, compress_level=6)
        sizes.append("%s %d" % (name, os.path.getsize(p)))
    print("zlib level 6 PNG sizes (PIL):", sizes)


# ---------------------------------------------------------------------------------------------------------
# JPEG via cjpeg / djpeg
# ---------------------------------------------------------------------------------------------------------

def make_jpegs():
    src = natural(5, 33, 45)
    ppm = out("jpeg", "_source.ppm")
    Image.fromarray(src, "RGB").save(ppm)
    pgm = out("jpeg", "_source.pgm")
    Image.fromarray(src, "RGB").convert("L").save(pgm)
    scans = out("jpeg", "_scans.txt")
    with open(scans, "w") as f:   # baseline, one scan per component (non-interleaved)
        f.write("0: 0 63 0 0;\n1: 0 63 0 0;\n2: 0 63 0 0;\n")
    cases = [
        ("base_444", ["-sample", "1x1"], ppm),
        ("base_422", ["-sample", "2x1"], ppm),
        ("base_420", ["-sample", "2x2"], ppm),
        ("base_440", ["-sample", "1x2"], ppm),
        ("base_411", ["-sample", "4x1"], ppm),
        ("grey", ["-grayscale"], pgm),
        ("restart_rows", ["-sample", "2x2", "-restart", "1"], ppm),
        ("restart_blocks", ["-sample", "1x1", "-restart", "3B"], ppm),
        ("prog_420", ["-progressive", "-sample", "2x2"], ppm),
        ("prog_444", ["-progressive", "-sample", "1x1"], ppm),
        ("prog_grey", ["-progressive", "-grayscale"], pgm),
        ("prog_restart", ["-progressive", "-sample", "2x2", "-restart", "2B"], ppm),
        ("nonint", ["-sample", "2x2", "-scans", scans], ppm),
        ("rgb", ["-rgb", "-sample", "1x1"], ppm),
    ]
    for name, args, src_path in cases:
        jp = out("jpeg", name + ".jpg")
        subprocess.run(["cjpeg", "-quality", "85"] + args + ["-outfile", jp, src_path], check=True)
        ext = ".pgm" if name.endswith("grey") else ".ppm"
        subprocess.run(["djpeg", "-pnm", "-outfile", out("jpeg", name + ext), jp], check=True)
    subprocess.run(["cjpeg", "-quality", "85", "-arithmetic", "-outfile", out("jpeg", "arith.jpg"), ppm], check=True)
    for p in (ppm, pgm, scans):
        os.remove(p)


# ---------------------------------------------------------------------------------------------------------
# NPY, PPM, GIF
# ---------------------------------------------------------------------------------------------------------

def make_npy():
    a = (np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 7.5) / 4
    np.save(out("npy", "f32_234.npy"), a)
    np.save(out("npy", "u8_5.npy"), np.array([0, 1, 127, 128, 255], dtype=np.uint8))
    np.save(out("npy", "scalar.npy"), np.float32(3.25))
    np.save(out("npy", "fortran.npy"), np.asfortranarray(a))
    np.save(out("npy", "bigendian.npy"), a.astype(">f4"))
    np.save(out("npy", "f64.npy"), a.astype(np.float64))
    np.save(out("npy", "i64.npy"), np.arange(6, dtype=np.int64))
    # version 2.0 by hand: 4-byte header length, double-quoted keys, no trailing comma, odd spacing
    hdr = b'{"descr":"|u1","fortran_order":False,"shape":(2,2)}'
    hdr += b" " * ((-(12 + len(hdr) + 1)) % 16) + b"\n"
    with open(out("npy", "v2_u8_22.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(hdr)) + hdr + bytes([9, 8, 7, 250]))
    got = np.load(out("npy", "v2_u8_22.npy"))
    assert got.tolist() == [[9, 8], [7, 250]]


def make_ppm():
    with open(out("ppm", "p6_comments_1000.ppm"), "wb") as f:   # 16-bit P6, maxval 1000
        f.write(b"P6\n# a comment\n3 2 # another\n1000\n")
        vals = [0, 500, 1000, 1, 999, 250, 750, 100, 900, 333, 666, 1000, 0, 0, 0, 1000, 1000, 1000]
        f.write(b"".join(struct.pack(">H", v) for v in vals))
    with open(out("ppm", "p5_15.pgm"), "wb") as f:   # 8-bit P5, maxval 15
        f.write(b"P5 4 1 15\n" + bytes([0, 5, 10, 15]))


def make_gif():
    rng = np.random.default_rng(3)
    frames = []
    for t in range(3):
        yy, xx = np.mgrid[0:12, 0:16]
        idx = ((xx + yy + 3 * t) // 3) % 6
        pal = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 0, 0], [255, 255, 255]])
        img = pal[idx].astype(np.uint8)
        img[rng.integers(0, 12), rng.integers(0, 16)] = [255, 255, 255]
        frames.append(Image.fromarray(img, "RGB"))
    p = out("gif", "anim.gif")
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0, interlace=True)
    im = Image.open(p)
    got = []
    for t in range(im.n_frames):
        im.seek(t)
        got.append(np.asarray(im.convert("RGB")))
    with open(out("gif", "anim.raw"), "wb") as f:
        f.write(np.stack(got).astype(np.uint8).tobytes())
    print("gif frames", len(got), got[0].shape)


if __name__ == "__main__":
    make_pngs()
    make_ratio_fixtures()
    make_jpegs()
    make_npy()
    make_ppm()
    make_gif()
    print("fixtures written under", os.path.normpath(ROOT))
