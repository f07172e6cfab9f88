#!/usr/bin/env python3
"""The PyTorch side of `i2v bench metrics`: the same work on the CPU with the modules the official code runs.

usage: /usr/bin/python3 tools/bench_metrics_torch.py --official DIR [i3d|inception] [clips=256 frames=16 size=64
       images=clips*frames threads=2]

  i3d        clips of frames x size x size in [-1, 1] -> F.interpolate to 224 (align_corners=True) -> (x + 1) / 2 ->
             the official Kinetics I3D port (DIR/metrics/PyTorch_FVD/I3D.py, random weights), logits averaged over
             time; batches of 20 as the official monitor
  inception  images of size x size -> F.interpolate to 299 (align_corners=False) -> pytorch-fid's FID InceptionV3
             (re-created in make_features_reference.py, random weights), batches of 50 as the official FID

Prints one line per network in the format of `i2v bench metrics`. Needs PyTorch (python3-torch); DIR is a checkout
of CompVis/image2video-synthesis-using-cINNs.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_features_reference as ref  # noqa: E402


def run(name, model, make_input, n, batch, prep):
    x = make_input(1)
    with torch.no_grad():
        model(prep(x))   # warm-up
        t0 = time.time()
        for i in range(0, n, batch):
            model(prep(make_input(min(batch, n - i))))
        t = time.time() - t0
    return t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--official", required=True)
    p.add_argument("args", nargs="*")
    a = p.parse_args()
    opts = {"clips": 256, "frames": 16, "size": 64, "images": -1, "threads": 2}
    which = {"i3d", "inception"}
    for arg in a.args:
        if arg in ("i3d", "inception"):
            which = {arg}
        else:
            k, v = arg.split("=")
            opts[k] = int(v)
    if opts["images"] < 0:
        opts["images"] = opts["clips"] * opts["frames"]
    torch.set_num_threads(opts["threads"])
    torch.manual_seed(7)
    S, T = opts["size"], opts["frames"]
    if "i3d" in which:
        mod = ref.load_official(os.path.join(a.official, "metrics/PyTorch_FVD/I3D.py"), "official_i3d_port")
        net = mod.I3D(400, "rgb").eval()

        def prep(v):
            n = v.shape[0]
            y = F.interpolate(v.reshape(-1, 3, S, S), size=(224, 224), mode="bilinear", align_corners=True)
            y = (y.reshape(n, T, 3, 224, 224) + 1) / 2
            return y.permute(0, 2, 1, 3, 4)
        t = run("i3d", lambda x: net(x)[1], lambda n: torch.rand(n, T, 3, S, S) * 2 - 1, opts["clips"], 20, prep)
        print("bench=metrics-torch net=i3d-monitor inputs=%d frames=%d size=%d threads=%d seconds=%.2f per_input_ms=%.1f"
              % (opts["clips"], T, S, opts["threads"], t, 1e3 * t / opts["clips"]), flush=True)
    if "inception" in which:
        net = ref.FidInception(1).eval()
        prep = lambda v: F.interpolate(v, size=(299, 299), mode="bilinear", align_corners=False)
        t = run("inception", net, lambda n: torch.rand(n, 3, S, S) * 2 - 1, opts["images"], 50, prep)
        print("bench=metrics-torch net=inception inputs=%d frames=0 size=%d threads=%d seconds=%.2f per_input_ms=%.1f"
              % (opts["images"], S, opts["threads"], t, 1e3 * t / opts["images"]), flush=True)


if __name__ == "__main__":
    main()
