#!/usr/bin/env python3
"""Makes the reference of tests/test_eval_metrics.c: the whole scoring of `i2v evaluate --metrics` (clip
assembly, batch rules, preprocessing, feature networks, distances, LPIPS, diversity) recomputed with PyTorch,
NumPy and SciPy on clips that `i2v evaluate --dump` wrote, with reduced-width random networks.

usage: /usr/bin/python3 tools/make_eval_reference.py --official DIR --dump DUMP [--out tests/data/eval]

  DIR   a checkout of CompVis/image2video-synthesis-using-cINNs (its I3D port, DTFVD I3D and LPIPS modules are
        imported as they are)
  DUMP  the folder of `i2v evaluate --model M --metrics fid,diversity --clips 40 --dump DUMP` on a model of the
        synthetic set (32 x 32 frames; the tiny configs trained for a few steps will do)

The dumped clips are too large to commit at 32 x 32, and the stand-in networks take any size, so the script
shrinks them: the frames' central 30 x 30 pixels averaged in 5 x 5 blocks (6 x 6 frames) for everything but LPIPS,
whose VGG needs at least 16 x 16 (2 x 2 blocks, 16 x 16 frames, the first 2 clips only); values rounded to 8 bits
(k / 127.5 - 1 for k = 0 .. 255, the same numbers on both sides). Networks, at 1/64 of the published widths:
  i3d, dti3d16, vgg16   the weights of tests/data/features (tools/make_features_reference.py)
  inception             those of tests/data/features with the BatchNorm statistics measured on this test's frames:
                        with the random statistics its features hardly depend on the input, which would make FID 0
  lpips                 the official LPIPS module at widths 1, 2, 4, 8, 8 with random weights
Everything runs in float64 from the float32 weights. The Frechet distances take scipy.linalg.sqrtm's path as the
official calculate_frechet_distance does; KID uses whole sets (fewer than 1000 rows: every subset is the whole set).

Writes into --out: clips.npy (40, 17, 3, 6, 6) and predicted.npy (40, 16, 3, 6, 6) uint8, the test loader's clips
and the sampled videos; diversity.npy (20, 5, 16, 3, 6, 6) uint8; lpips_clips.npy (2, 17, 3, 16, 16) and
lpips_predicted.npy (2, 16, 3, 16, 16); inception_w64.safetensors, lpips_w64.safetensors; expected.txt
(key=value lines).
"""
import argparse
import os
import sys
import types

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy import linalg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_features_reference as ref  # noqa: E402
import safetensors_io  # noqa: E402

N_QUALITY, N_DIVERSITY, N_LPIPS = 40, 20, 2
LPIPS_WIDTHS = [1, 2, 4, 8, 8]


def shrink(x, crop, block):
    """(..., 32, 32) float in [-1, 1] -> the central `crop` pixels averaged in block x block, as uint8"""
    o = (x.shape[-1] - crop) // 2
    x = x[..., o:o + crop, o:o + crop]
    s = crop // block
    x = x.reshape(*x.shape[:-2], s, block, s, block).mean(axis=(-3, -1))
    return np.clip(np.rint((x + 1) * 127.5), 0, 255).astype(np.uint8)


def values(u8):
    return torch.from_numpy(u8.astype(np.float64) / 127.5 - 1.0)


# ---- the official code's distances ------------------------------------------------------------------------------
def frechet(a, b):
    """metrics/FID/FID_Score.py calculate_frechet_distance on np.cov(rowvar=False) statistics"""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        off = np.eye(s1.shape[0]) * 1e-6
        covmean = linalg.sqrtm((s1 + off).dot(s2 + off))
    covmean = covmean.real
    d = mu1 - mu2
    return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def frechet_exact(a, b):
    """the same value through a symmetric eigenproblem (to report how far scipy's route is from it)"""
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.maximum(w, 0))) @ v.T
    ev = np.linalg.eigvalsh(r @ s2 @ r)
    d = a.mean(0) - b.mean(0)
    return d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.maximum(ev, 0)).sum()


def kid_whole(a, b):
    """unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 on the whole sets"""
    d = a.shape[1]
    k = lambda x, y: (x @ y.T / d + 1) ** 3
    m = a.shape[0]
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    return ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()


# ---- networks -------------------------------------------------------------------------------------------------------
def load_pth(path):
    obj = torch.load(path, map_location="cpu")
    return obj["state_dict"] if "state_dict" in obj else obj


def lpips_module(official):
    sys.path.insert(0, official)
    for name in ("requests", "tqdm", "wandb"):   # imported by the official module for downloads and logging only
        if name not in sys.modules:
            try:
                __import__(name)
            except ImportError:
                stub = types.ModuleType(name)
                stub.tqdm = lambda *a, **k: None
                sys.modules[name] = stub
    import torchvision
    from stage2_cINN.AE.modules import LPIPS as L
    from stage2_cINN.AE.modules import vgg16 as V
    w = LPIPS_WIDTHS
    cfg = [w[0], w[0], "M", w[1], w[1], "M", w[2], w[2], w[2], "M", w[3], w[3], w[3], "M", w[4], w[4], w[4], "M"]
    torch.manual_seed(31)
    features = torchvision.models.vgg.make_layers(cfg)
    V.models = types.SimpleNamespace(vgg16=lambda pretrained=False: types.SimpleNamespace(features=features))
    L.LPIPS.load_from_pretrained = lambda self, name="vgg_lpips": None
    m = L.LPIPS()
    m.chns = list(w)
    for k in range(5):
        lin = L.NetLinLayer(w[k], use_dropout=True)
        with torch.no_grad():
            lin.model[1].weight.uniform_(0, 2.0 / w[k])
        setattr(m, "lin%d" % k, lin)
    with torch.no_grad():
        for p in m.state_dict().values():
            p.copy_(p.float())
    return m.double().eval()


# ---- the preprocessing of each network (networks/features.h; make_features_reference.py checks them) ----------
def embed_i3d(port, v):       # the paper's FVD: [0, 255], TF1 resize_bilinear to 224, back to [-1, 1]
    out = []
    for i in range(0, v.shape[0], 4):
        y = ref.frames_resize((v[i:i + 4] + 1) * 127.5, 224, "tf1") * 2 / 255 - 1
        out.append(port(y.permute(0, 2, 1, 3, 4))[1].reshape(y.shape[0], -1))
    return torch.cat(out).numpy()


def embed_dti3d(dt, v):       # align_corners=True to 224, the clip repeated 3x, its first 16 frames
    out = []
    for i in range(0, v.shape[0], 4):
        y = ref.frames_resize(v[i:i + 4], 224, "corners").repeat(1, 3, 1, 1, 1)[:, :16]
        out.append(dt.get_representation(y.permute(0, 2, 1, 3, 4)).reshape(y.shape[0], -1))
    return torch.cat(out).numpy()


def resize_299(x):
    return F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)


def embed_inception(inc, x):  # frames, align_corners=False to 299, values as they are
    return torch.cat([inc(resize_299(x[i:i + 50])).reshape(-1, inc.dim) for i in range(0, x.shape[0], 50)]).numpy()


MEAN = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)


def vgg_maps(vgg, x):         # (x + 1) / 2, ImageNet normalisation, align_corners=False to 224
    return vgg(F.interpolate(((x + 1) / 2 - MEAN) / STD, size=(224, 224), mode="bilinear", align_corners=False))


def pairs(e):
    """eval_diversity.py: the mean over ordered pairs i != j of ((e[:, i] - e[:, j]) ** 2).mean()"""
    R = e.shape[1]
    return np.mean([((e[:, i] - e[:, j]) ** 2).mean() for i in range(R) for j in range(R) if i != j])


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True)
    p.add_argument("--dump", required=True)
    p.add_argument("--out", default="tests/data/eval")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    feat = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "features")
    torch.manual_seed(1)

    clips = np.load(os.path.join(a.dump, "test_clips.npy"))
    pred = np.load(os.path.join(a.dump, "predicted.npy"))
    div = np.load(os.path.join(a.dump, "diversity.npy"))
    assert clips.shape[0] >= N_QUALITY and div.shape[0] >= N_DIVERSITY and clips.shape[-1] == 32
    u8 = {"clips": shrink(clips[:N_QUALITY], 30, 5), "predicted": shrink(pred[:N_QUALITY], 30, 5),
          "diversity": shrink(div[:N_DIVERSITY], 30, 5),
          "lpips_clips": shrink(clips[:N_LPIPS], 32, 2), "lpips_predicted": shrink(pred[:N_LPIPS], 32, 2)}
    for k, v in u8.items():
        np.save(os.path.join(a.out, k + ".npy"), v)

    port = ref.i3d_port(a.official)
    port.load_state_dict({k: v.double() for k, v in load_pth(os.path.join(feat, "i3d_w64.pth")).items()})
    dt = ref.dti3d(a.official, 16)
    dt.load_state_dict({k: v.double() for k, v in load_pth(os.path.join(feat, "dti3d_w64.pth")).items()})
    vgg = ref.VggFeatures(ref.DIV).double().eval()
    vgg.load_state_dict({k: v.double() for k, v in load_pth(os.path.join(feat, "vgg16_w64.pth")).items()
                         if k.startswith("features.")})
    inc = ref.FidInception(ref.DIV).double()
    inc.load_state_dict({k: v.double() for k, v in load_pth(os.path.join(feat, "inception_w64.pth")).items()
                         if not k.startswith("fc.")})
    lp = lpips_module(a.official)

    # eval_synthesis_quality.py on the synthetic set (BAIR's rule): generated [x0, g1 .. g15], real [x0 .. x15]
    seq, gen16 = values(u8["clips"]), values(u8["predicted"])
    gen = torch.cat([seq[:, :1], gen16[:, :15]], 1)
    real = seq[:, :16]
    n, T = gen.shape[:2]
    frames_gen, frames_real = gen.reshape(-1, *gen.shape[2:]), real.reshape(-1, *real.shape[2:])

    # InceptionV3's BatchNorm statistics from this test's frames (one pass in training mode, then fixed)
    with torch.no_grad():
        for m in inc.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None
                m.reset_running_stats()
        inc.train()
        inc(resize_299(torch.cat([frames_gen, frames_real])))
        inc.eval()
        for v in inc.state_dict().values():
            if v.dtype.is_floating_point:
                v.copy_(v.float())
    exp = {}
    with torch.no_grad():
        # FVD: batches of 16 videos, the rest dropped
        used = n // 16 * 16
        fa, fb = embed_i3d(port, gen[:used]), embed_i3d(port, real[:used])
        exp["fvd"], exp["fvd_kid"], exp["fvd_used"] = frechet(fa, fb), kid_whole(fa, fb), used
        exp["fvd_exact"] = frechet_exact(fa, fb)
        # DTFVD: batches of 40
        used = n // 40 * 40
        fa, fb = embed_dti3d(dt, gen[:used]), embed_dti3d(dt, real[:used])
        exp["dtfvd"], exp["dtfvd_kid"], exp["dtfvd_used"] = frechet(fa, fb), kid_whole(fa, fb), used
        exp["dtfvd_exact"] = frechet_exact(fa, fb)
        # FID: every frame, batches of 50
        used = n * T // 50 * 50
        fa, fb = embed_inception(inc, frames_gen[:used]), embed_inception(inc, frames_real[:used])
        print("inception features: std over frames / mean |value| %.3g" % (fa.std(0).mean() / np.abs(fa).mean()))
        exp["fid"], exp["fid_kid"], exp["fid_used"] = frechet(fa, fb), kid_whole(fa, fb), used
        exp["fid_exact"] = frechet_exact(fa, fb)
        # LPIPS on the 16 x 16 clips: chunks of 10 frame pairs, the mean of the chunk means
        ls, lg = values(u8["lpips_clips"]), values(u8["lpips_predicted"])
        lgen = torch.cat([ls[:, :1], lg[:, :15]], 1).reshape(-1, 3, 16, 16)
        lreal = ls[:, :16].reshape(-1, 3, 16, 16)
        chunks = lgen.shape[0] // 10
        exp["lpips"] = sum(lp(lgen[i * 10:(i + 1) * 10], lreal[i * 10:(i + 1) * 10]).mean().item()
                           for i in range(chunks)) / chunks
        exp["lpips_frames"] = chunks * 10
        # diversity (eval_diversity.py): videos (clips, 5, 16, 3, S, S)
        dv = values(u8["diversity"])
        nc, R, G = dv.shape[:3]
        vals = []
        for video in dv:
            fmap = vgg_maps(vgg, video.reshape(-1, *video.shape[2:]))
            for i in range(R):
                for j in range(R):
                    if i != j:
                        for l in range(5):
                            f = fmap[l].reshape(R, G, *fmap[l].shape[1:])
                            vals.append(((f[i] - f[j]) ** 2).mean().item())
        exp["diversity_vgg"] = np.mean(vals)
        k16 = nc // 16 * 16
        e = embed_i3d(port, dv[:k16].reshape(-1, *dv.shape[2:])).reshape(k16, R, -1)
        exp["diversity_i3d"], exp["diversity_i3d_clips"] = pairs(e), k16
        k20 = nc // 20 * 20
        e = np.stack([embed_dti3d(dt, dv[:k20, r]) for r in range(R)], 1)
        exp["diversity_dti3d"], exp["diversity_dti3d_clips"] = 1000 * pairs(e), k20

    meta = {"made_by": "tools/make_eval_reference.py", "width_div": str(ref.DIV)}
    safetensors_io.save(os.path.join(a.out, "inception_w64.safetensors"),
                        {k: v.float().numpy() for k, v in inc.state_dict().items()
                         if not k.endswith("num_batches_tracked")}, meta)
    safetensors_io.save(os.path.join(a.out, "lpips_w64.safetensors"),
                        {k: v.float().numpy() for k, v in lp.state_dict().items()}, meta)
    with open(os.path.join(a.out, "expected.txt"), "w") as f:
        f.write("# made by tools/make_eval_reference.py (PyTorch %s, SciPy route of the Frechet distance); "
                "*_exact: the same through a symmetric eigenproblem\n" % torch.__version__)
        for k, v in exp.items():
            f.write("%s=%s\n" % (k, repr(float(v)) if not isinstance(v, int) else v))
    for k, v in exp.items():
        print(k, v)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print("wrote %s (%d bytes in all)" % (a.out, total))


if __name__ == "__main__":
    main()
