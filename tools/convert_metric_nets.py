#!/usr/bin/env python3
"""Converts the published weights of the metric feature networks into the safetensors files i2v's
networks/features.h loads. Python 3 standard library only (the .pth reader of convert_official.py: PyTorch is
never imported, no code in the file is run).

usage: python3 tools/convert_metric_nets.py NET IN.pth OUT.safetensors [--force]

  NET        published file (where it is published)                                  metric
  i3d        model_rgb.pth: the PyTorch port of DeepMind's Kinetics-400 I3D              FVD (training-time monitor;
             (hassony2/kinetics_i3d_pytorch, model/model_rgb.pth; the official code      the paper's FVD uses the
             loads it from ./models/PI3D/model_rgb.pth)                                   TF-Hub module, see docs/)
  dti3d      I3D_16.pth.tar or I3D_32.pth.tar: the authors' I3D trained on dynamic        DTFVD
             textures (released with the official code's models, ./models/DTI3D/...)
  inception  pt_inception-2015-12-05-6726825d.pth: the TF FID Inception weights ported    FID
             by pytorch-fid (mseitzer/pytorch-fid, release fid_weights)
  vgg16      vgg16-397923af.pth: torchvision's ImageNet VGG16                             VGG diversity score
             (download.pytorch.org/models/vgg16-397923af.pth)

The tensors keep the names of the published file; only the ones the network uses are written (BatchNorm's
num_batches_tracked, the DTI3D logits, Inception's fc and VGG's classifier are dropped), as float32 or whatever
the file stores. The file is checked to hold the network it is converted as (its first layer's weight must be
there); i2v checks every name and shape when it loads the result (`i2v features --net NET --weights OUT ...`).
The two DTI3D files have the same tensors: name the result after the file (dti3d16 loads I3D_16's, dti3d32
I3D_32's).

Exit status 0 on success, 1 with a message naming the file on any error. Tested by tests/test_convert_nets.c on
the reduced-width files of tests/data/features/.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from convert_official import Checkpoint, ConvertError, check_writable, write_safetensors  # noqa: E402

SCRIPT = "convert_metric_nets.py"

# net -> (the tensor that identifies the file, prefixes of tensors the network does not use, description)
NETS = {
    "i3d": ("conv3d_1a_7x7.conv3d.weight", (), "the Kinetics-400 I3D port (model_rgb.pth)"),
    "dti3d": ("Conv3d_1a_7x7.conv3d.weight", ("logits.",), "the dynamic-texture I3D (I3D_16.pth.tar / I3D_32.pth.tar)"),
    "inception": ("Conv2d_1a_3x3.conv.weight", ("fc.", "AuxLogits."), "pytorch-fid's Inception (pt_inception-2015-12-05-*.pth)"),
    "vgg16": ("features.0.weight", ("classifier.",), "torchvision's VGG16 (vgg16-397923af.pth)"),
}


def convert(net, src, dst, force):
    marker, unused, what = NETS[net]
    ck = Checkpoint(src)
    sd = ck.state_dict()
    if marker not in sd:
        others = [n for n, spec in NETS.items() if spec[0] in sd]
        hint = " (it looks like the %s file: convert it as %s)" % (others[0], others[0]) if others else ""
        raise ConvertError("%s: not %s: it has no tensor %s%s" % (src, what, marker, hint))
    items = [(k, ck, t) for k, t in sd.items()
             if not k.endswith("num_batches_tracked") and not any(k.startswith(u) for u in unused)]
    check_writable(dst, force)
    out_dir = os.path.dirname(dst)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    write_safetensors(dst, items, {"format": "pt", "source": "tools/convert_metric_nets.py", "network": net,
                                   "converted_from": os.path.basename(src)})
    print("wrote %s (%d tensors of %s; %d unused ones dropped)" % (dst, len(items), net, len(sd) - len(items)))


def main(argv):
    p = argparse.ArgumentParser(prog=SCRIPT, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("net", choices=sorted(NETS), help="which network the file holds")
    p.add_argument("input", help="the published .pth / .pth.tar file")
    p.add_argument("output", help="the safetensors file to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    a = p.parse_args(argv)
    try:
        convert(a.net, a.input, a.output, a.force)
    except ConvertError as err:
        sys.stderr.write("%s: error: %s\n" % (SCRIPT, err))
        return 1
    except OSError as err:
        sys.stderr.write("%s: error: %s: %s\n" % (SCRIPT, err.filename or "", err.strerror or err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
