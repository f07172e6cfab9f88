#!/usr/bin/env python3
"""Makes the reference files of tests/test_features.c: the metric feature networks run in PyTorch with random
weights at reduced widths, their weights in the formats of the published files, and their outputs.

usage: /usr/bin/python3 tools/make_features_reference.py --official DIR [--out tests/data/features]

  DIR  a checkout of CompVis/image2video-synthesis-using-cINNs: its metrics/PyTorch_FVD/I3D.py (the Kinetics I3D
       port) and metrics/DTFVD/ID3.py, ID3_32.py (the dynamic-texture I3D) are imported as they are.

Needs PyTorch and torchvision (python3-torch, python3-torchvision). The networks:
  i3d        the official I3D port built by its own classes (Unit3Dpy, MaxPool3dTFPadding, Mixed), every width / 64
  dti3d      the official InceptionI3D (16 frames) and its 32-frame twin, every width / 64, logits for 18 classes
  inception  pytorch-fid's FID InceptionV3, re-created here from its public definition (torchvision's Inception3
             layers with the FID blocks' forward passes) with every width / 64; at width / 1 its tensor names and
             shapes are checked against torchvision's inception_v3(num_classes=1008, aux_logits=False)
  vgg16      torchvision's VGG16 features (torchvision.models.vgg.make_layers), every width / 64
BatchNorm statistics and affine parameters are random (the official initialisation leaves them neutral, which would
hide a mistake in them). Every weight is rounded to float32 and stored as such; the networks then run in float64, so
the C double build must match to 1e-9 and the float build to 1e-4.

Inputs are not stored: both sides generate them with gen() below (values k / 1024 - 1, exactly representable).

Writes into --out:
  <net>_w64.safetensors      the weights under the published files' names (what i2v loads)
  <net>_w64.pth              the same weights as torch.save files shaped like the published ones (the converters'
                             fixtures, in the legacy format but for vgg16 (zip): model_rgb.pth and the inception file bare
                             state_dicts, I3D_16.pth.tar a dict holding 'state_dict', the vgg16 file a bare state_dict
                             with the unused classifier tensors and num_batches_tracked)
  reference.safetensors      network outputs on generated inputs, and the whole preprocessing + network pipeline
"""
import argparse
import importlib.util
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

DIV = 64
torch.manual_seed(20240611)


def r(c):
    return max(1, c // DIV)


def gen(shape, seed):
    """Deterministic test input: element i is k / 1024 - 1 with k = h(i) mod 2049 (tests/test_features.c gen())."""
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.uint64) + np.uint64(1)
    with np.errstate(over="ignore"):
        h = i * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        h ^= h >> np.uint64(29)
        h = h * np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    k = (h % np.uint64(2049)).astype(np.float64)
    return torch.from_numpy((k / 1024.0 - 1.0).reshape(shape))


def load_official(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def randomize(model):
    """Convs keep their (Kaiming) initialisation; BatchNorms and biases get random values."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            elif isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    m.bias.normal_(0, 0.1)
        for p in model.state_dict().values():   # float32-representable values in both builds
            if p.dtype.is_floating_point:
                p.copy_(p.float())
    return model


# ---- the I3D port (metrics/PyTorch_FVD/I3D.py) -------------------------------------------------------------------
MIXED = [("3b", [64, 96, 128, 16, 32, 32]), ("3c", [128, 128, 192, 32, 96, 64]), ("4b", [192, 96, 208, 16, 48, 64]),
         ("4c", [160, 112, 224, 24, 64, 64]), ("4d", [128, 128, 256, 24, 64, 64]), ("4e", [112, 144, 288, 32, 64, 64]),
         ("4f", [256, 160, 320, 32, 128, 128]), ("5b", [256, 160, 320, 32, 128, 128]),
         ("5c", [384, 192, 384, 48, 128, 128])]


def mixed_out(w):
    return w[0] + w[2] + w[4] + w[5]


def i3d_port(official):
    mod = load_official(os.path.join(official, "metrics/PyTorch_FVD/I3D.py"), "official_i3d_port")
    net = mod.I3D(400, "rgb")
    net.conv3d_1a_7x7 = mod.Unit3Dpy(3, r(64), kernel_size=(7, 7, 7), stride=(2, 2, 2), padding="SAME")
    net.conv3d_2b_1x1 = mod.Unit3Dpy(r(64), r(64), kernel_size=(1, 1, 1), padding="SAME")
    net.conv3d_2c_3x3 = mod.Unit3Dpy(r(64), r(192), kernel_size=(3, 3, 3), padding="SAME")
    cin = r(192)
    for name, w in MIXED:
        w = [r(c) for c in w]
        setattr(net, "mixed_" + name, mod.Mixed(cin, w))
        cin = mixed_out(w)
    net.conv3d_0c_1x1 = mod.Unit3Dpy(cin, 400, kernel_size=(1, 1, 1), activation=None, use_bias=True, use_bn=False)
    return randomize(net).double().eval()


# ---- the dynamic-texture I3D (metrics/DTFVD/ID3.py, ID3_32.py) ---------------------------------------------------
def dti3d(official, frames):
    path = "metrics/DTFVD/ID3_32.py" if frames == 32 else "metrics/DTFVD/ID3.py"
    mod = load_official(os.path.join(official, path), "official_id3_%d" % frames)
    net = mod.InceptionI3D(18, 1)
    L = net.layers
    L["Conv3d_1a_7x7"] = mod.Unit3D(3, r(64), kernel_size=[7, 7, 7], stride=(2, 2, 2), padding=3,
                                    name="inception_i3dConv3d_1a_7x7")
    L["Conv3d_2b_1x1"] = mod.Unit3D(r(64), r(64), kernel_size=[1, 1, 1], padding=0, name="Conv3d_2b_1x1")
    L["Conv3d_2c_3x3"] = mod.Unit3D(r(64), r(192), kernel_size=[3, 3, 3], padding=1, name="Conv3d_2c_3x3")
    cin = r(192)
    for name, w in MIXED:
        w = [r(c) for c in w]
        L["Mixed_" + name] = mod.InceptionModule(cin, w, "Mixed_" + name)
        cin = mixed_out(w)
    L["logits"] = mod.Unit3D(cin, 18, kernel_size=[1, 1, 1], padding=0, activation_fn=None, use_batch_norm=False,
                             use_bias=True, name="logits")
    for k, layer in L.items():   # re-register the replaced layers under their names
        net.add_module(k, layer)
    return randomize(net).double().eval()


# ---- pytorch-fid's InceptionV3, re-created with a width divisor ------------------------------------------------
class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def tf_avg(x):
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):   # FIDInceptionA
    def __init__(self, cin, pool_features, d):
        super().__init__()
        q = lambda c: max(1, c // d)
        self.branch1x1 = BasicConv2d(cin, q(64), kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, q(48), kernel_size=1)
        self.branch5x5_2 = BasicConv2d(q(48), q(64), kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, q(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(q(64), q(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(q(96), q(96), kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, q(pool_features), kernel_size=1)
        self.cout = q(64) + q(64) + q(96) + q(pool_features)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(tf_avg(x))], 1)


class BlockB(nn.Module):   # InceptionB
    def __init__(self, cin, d):
        super().__init__()
        q = lambda c: max(1, c // d)
        self.branch3x3 = BasicConv2d(cin, q(384), kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, q(64), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(q(64), q(96), kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(q(96), q(96), kernel_size=3, stride=2)
        self.cout = q(384) + q(96) + cin

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockC(nn.Module):   # FIDInceptionC
    def __init__(self, cin, c7, d):
        super().__init__()
        q = lambda c: max(1, c // d)
        c7 = q(c7)
        self.branch1x1 = BasicConv2d(cin, q(192), kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, q(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, q(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, q(192), kernel_size=1)
        self.cout = 4 * q(192)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, "branch7x7dbl_%d" % i)(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(tf_avg(x))], 1)


class BlockD(nn.Module):   # InceptionD
    def __init__(self, cin, d):
        super().__init__()
        q = lambda c: max(1, c // d)
        self.branch3x3_1 = BasicConv2d(cin, q(192), kernel_size=1)
        self.branch3x3_2 = BasicConv2d(q(192), q(320), kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, q(192), kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(q(192), q(192), kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(q(192), q(192), kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(q(192), q(192), kernel_size=3, stride=2)
        self.cout = q(320) + q(192) + cin

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = x
        for i in range(1, 5):
            b7 = getattr(self, "branch7x7x3_%d" % i)(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class BlockE(nn.Module):   # FIDInceptionE_1 (avg) / FIDInceptionE_2 (max)
    def __init__(self, cin, d, max_pool):
        super().__init__()
        q = lambda c: max(1, c // d)
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, q(320), kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, q(384), kernel_size=1)
        self.branch3x3_2a = BasicConv2d(q(384), q(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(q(384), q(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, q(448), kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(q(448), q(384), kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(q(384), q(384), kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(q(384), q(384), kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, q(192), kernel_size=1)
        self.cout = q(320) + 4 * q(384) + q(192)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else tf_avg(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pool)], 1)


class FidInception(nn.Module):
    """pytorch-fid InceptionV3, output block 3, without resize or input normalisation."""
    def __init__(self, d):
        super().__init__()
        q = lambda c: max(1, c // d)
        self.Conv2d_1a_3x3 = BasicConv2d(3, q(32), kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(q(32), q(32), kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(q(32), q(64), kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(q(64), q(80), kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(q(80), q(192), kernel_size=3)
        c = q(192)
        blocks = []
        for name, make in [("Mixed_5b", lambda c: BlockA(c, 32, d)), ("Mixed_5c", lambda c: BlockA(c, 64, d)),
                           ("Mixed_5d", lambda c: BlockA(c, 64, d)), ("Mixed_6a", lambda c: BlockB(c, d)),
                           ("Mixed_6b", lambda c: BlockC(c, 128, d)), ("Mixed_6c", lambda c: BlockC(c, 160, d)),
                           ("Mixed_6d", lambda c: BlockC(c, 160, d)), ("Mixed_6e", lambda c: BlockC(c, 192, d)),
                           ("Mixed_7a", lambda c: BlockD(c, d)), ("Mixed_7b", lambda c: BlockE(c, d, False)),
                           ("Mixed_7c", lambda c: BlockE(c, d, True))]:
            b = make(c)
            setattr(self, name, b)
            blocks.append(name)
            c = b.cout
        self.blocks, self.dim = blocks, c

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in self.blocks:
            x = getattr(self, name)(x)
        return F.adaptive_avg_pool2d(x, (1, 1))


def check_inception_names():
    """At full width the re-created network has torchvision's tensors (less fc and the aux logits)."""
    tv = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    want = {k: tuple(v.shape) for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    got = {k: tuple(v.shape) for k, v in FidInception(1).state_dict().items()}
    assert got == want, "re-created Inception differs from torchvision's: %s" % (set(got) ^ set(want))


# ---- VGG16 ---------------------------------------------------------------------------------------------------
class VggFeatures(nn.Module):
    SLICES = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]

    def __init__(self, d):
        super().__init__()
        cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
        self.features = torchvision.models.vgg.make_layers([c if c == "M" else max(1, c // d) for c in cfg])

    def forward(self, x):
        out = []
        for a, b in self.SLICES:
            for i in range(a, b):
                x = self.features[i](x)
            out.append(x)
        return out


def check_vgg_names():
    want = {k: tuple(v.shape) for k, v in torchvision.models.vgg16(weights=None).state_dict().items()
            if k.startswith("features.")}
    got = {k: tuple(v.shape) for k, v in VggFeatures(1).state_dict().items()}
    assert got == want, "VGG16 features differ from torchvision's"


# ---- preprocessing ---------------------------------------------------------------------------------------------
def tf1_resize(x, size):
    """tf.image.resize_bilinear (TF1, align_corners=False, half_pixel_centers=False): source = dst * in / out with
    the coordinates in float32, as TensorFlow's kernel computes them; x (N, C, H, W) float64."""
    def taps(n_in, n_out):
        scale = np.float32(n_in) / np.float32(n_out)
        src = np.arange(n_out, dtype=np.float32) * scale
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(np.ceil(src).astype(np.int64), n_in - 1)
        return lo, hi, torch.from_numpy((src - np.floor(src)).astype(np.float64))
    lo_h, hi_h, wh = taps(x.shape[2], size)
    lo_w, hi_w, ww = taps(x.shape[3], size)
    top = x[:, :, lo_h, :]
    bot = x[:, :, hi_h, :]
    wh = wh.view(1, 1, -1, 1)
    ww = ww.view(1, 1, 1, -1)
    tl, tr = top[:, :, :, lo_w], top[:, :, :, hi_w]
    bl, br = bot[:, :, :, lo_w], bot[:, :, :, hi_w]
    t = tl + (tr - tl) * ww
    b = bl + (br - bl) * ww
    return t + (b - t) * wh


def frames_resize(v, size, how):
    """v (n, T, 3, H, W) -> (n, T, 3, size, size)"""
    n, T = v.shape[:2]
    flat = v.reshape(n * T, *v.shape[2:])
    if how == "tf1":
        out = tf1_resize(flat, size)
    else:
        out = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=(how == "corners"))
    return out.reshape(n, T, 3, size, size)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True)
    p.add_argument("--out", default="tests/data/features")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    check_inception_names()
    check_vgg_names()

    port, dt16, dt32 = i3d_port(a.official), dti3d(a.official, 16), dti3d(a.official, 32)
    dt32.load_state_dict(dt16.state_dict())   # I3D_32 has the same tensors
    inc = randomize(FidInception(DIV)).double().eval()
    vgg = randomize(VggFeatures(DIV)).double().eval()

    ref = {}
    with torch.no_grad():
        # the networks on inputs at odd sizes (the port's fixed padding and ceil-mode pools differ from TF's there)
        x = gen((2, 3, 9, 197, 211), 1)
        ref["i3d.forward"] = port(x)[1].numpy()
        x = gen((2, 3, 10, 197, 211), 2)
        ref["dti3d16.forward"] = dt16.get_representation(x).numpy()
        x = gen((1, 3, 25, 193, 199), 3)
        ref["dti3d32.forward"] = dt32.get_representation(x).numpy()
        x = gen((2, 3, 83, 91), 4)
        ref["inception.forward"] = inc(x).numpy()
        x = gen((1, 3, 21, 19), 5)
        for k, m in enumerate(vgg(x)):
            ref["vgg16.forward.%d" % k] = m.numpy()

        # the whole pipeline from raw clips in [-1, 1] (features.h's table)
        v = gen((2, 10, 3, 12, 14), 11)   # FVD: [0, 255], TF1 resize, back to [-1, 1]
        y = frames_resize((v + 1) * 127.5, 224, "tf1") * 2 / 255 - 1
        ref["i3d.embed"] = port(y.permute(0, 2, 1, 3, 4))[1].numpy()
        v = gen((2, 9, 3, 13, 11), 12)    # the monitor: align_corners=True, then (x + 1) / 2
        y = (frames_resize(v, 224, "corners") + 1) / 2
        ref["i3d-monitor.embed"] = port(y.permute(0, 2, 1, 3, 4))[1].numpy()
        v = gen((2, 5, 3, 12, 14), 13)    # DTFVD 16: align_corners=True, repeat 3x, first 16 frames
        y = frames_resize(v, 224, "corners").repeat(1, 3, 1, 1, 1)[:, :16]
        ref["dti3d16.embed"] = dt16.get_representation(y.permute(0, 2, 1, 3, 4)).reshape(2, -1).numpy()
        v = gen((1, 32, 3, 8, 9), 14)     # DTFVD 32: exactly 32 frames
        y = frames_resize(v, 224, "corners")
        ref["dti3d32.embed"] = dt32.get_representation(y.permute(0, 2, 1, 3, 4)).reshape(1, -1).numpy()
        v = gen((3, 3, 17, 13), 15)       # FID: bilinear align_corners=False to 299, values as they are
        ref["inception.embed"] = inc(F.interpolate(v, size=(299, 299), mode="bilinear",
                                                   align_corners=False)).reshape(3, -1).numpy()
        v = gen((1, 3, 15, 11), 16)       # VGG diversity: (x + 1) / 2, ImageNet normalisation, resize to 224
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
        y = F.interpolate(((v + 1) / 2 - mean) / std, size=(224, 224), mode="bilinear", align_corners=False)
        maps = vgg(y)
        for k, m in enumerate(maps):   # per-channel mean and mean square (the full maps are too large to store)
            ref["vgg16.layers.%d.mean" % k] = m.mean(dim=(2, 3)).numpy()
            ref["vgg16.layers.%d.meansq" % k] = (m * m).mean(dim=(2, 3)).numpy()
        ref["vgg16.layers.4"] = maps[4].numpy()

    meta = {"made_by": "tools/make_features_reference.py", "width_div": str(DIV)}
    safetensors_io.save(os.path.join(a.out, "reference.safetensors"), ref, meta)

    # weights: what i2v loads (the tensors each network uses, float32) and the converters' fixtures
    def used(sd, drop):
        return {k: v.float().numpy() for k, v in sd.items()
                if not k.endswith("num_batches_tracked") and not any(k.startswith(d) for d in drop)}
    nets = [("i3d", port, (), True), ("dti3d", dt16, ("logits.",), True), ("inception", inc, (), True),
            ("vgg16", vgg, (), False)]
    for name, net, drop, legacy in nets:
        sd = net.state_dict()
        safetensors_io.save(os.path.join(a.out, "%s_w%d.safetensors" % (name, DIV)), used(sd, drop), meta)
        full = {k: v.float() for k, v in sd.items()}
        if name == "inception":   # the published file also holds the classifier
            full["fc.weight"] = torch.randn(5, inc.dim)
            full["fc.bias"] = torch.randn(5)
        if name == "vgg16":
            full["classifier.6.bias"] = torch.randn(5)
        obj = {"state_dict": full, "epoch": 7} if name == "dti3d" else full
        torch.save(obj, os.path.join(a.out, "%s_w%d.pth" % (name, DIV)), _use_new_zipfile_serialization=not legacy)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print("wrote %s (%d bytes in all)" % (a.out, total))


if __name__ == "__main__":
    main()
