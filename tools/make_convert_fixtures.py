"""Makes the small official-format checkpoints under tests/data/convert/ that tests/test_convert.c converts with
tools/convert_official.py, and the reference files that say what the conversion must produce.

usage: /usr/bin/python3 tools/make_convert_fixtures.py [/path/to/image2video-synthesis-using-cINNs] [--i2v ./i2v]
       (run from the repository root; default official path /tmp/official). Needs PyTorch and PyYAML, run once;
       the test never needs them.

How the names and shapes are chosen: ./i2v trains each stage for one step at reduced widths (the tiny CPU configs
with the overrides below), and the fixture networks take every name, shape and dtype from those i2v checkpoints, so
that the converted folder must load in i2v with its strict name and shape checks. The cINN is built from the
official ConditionalFlow (flow_blocks.py) at the same size and its state_dict is asserted to have exactly i2v's
names, shapes and dtypes. Values are random (ActNorm `initialized` 1, cINN permutations from the official module).

Files (tests/data/convert/):
  gen.pth             zip format; {'epoch', 'state_dict', 'optim_state_dict' (a real Adam state),
                      'scheduler_state_dict'} with float16 tensors (every weight_orig), a transposed and a permuted
                      (non-contiguous) tensor, and two tensors that are slices of one storage (storage offset)
  enc.pth.tar         legacy format (_use_new_zipfile_serialization=False); {'state_dict'} with a float64, a bfloat16
                      and a permuted tensor
  disc_t.pth          zip; a bare state_dict with a bfloat16 tensor
  disc_s.pth          legacy; {'state_dict'} with every key under 'module.' (nn.DataParallel), uint8 ActNorm flags
  encoder_stage2.pth  zip; {'state_dict'} of the conditioning encoder (BatchNorm: int64 num_batches_tracked)
  cINN.pth            legacy; {'state_dict'} of the official ConditionalFlow (uint8 flags, int64 permutations)
  lpips_lin.pth       zip; lin0..lin4.model.1.weight at the stand-in widths LPIPS_WIDTHS
  vgg16_small.pth     legacy; torchvision-style features.N.weight/bias for all 13 convs at those widths, plus a
                      classifier tensor that the conversion ignores (the real file has the same names at 64..512)
  whole_module.pth    zip; a pickled nn.Linear (not a state_dict): the converter must refuse it by name
  config_stage1.yaml, config_stage2_AE.yaml   as OmegaConf.save writes them (block lists), i.e. as the official
                      training scripts leave them in a model folder
  config_stage2.yaml  in the flow-list form of the repository's configs/ files
  ref_stage1.safetensors (gen. enc. disc_t. disc_s.), ref_cond_ae.safetensors (enc.), ref_cinn.safetensors (flow.),
  ref_lpips.safetensors: exactly the tensors each converted file must hold (names, dtypes, shapes, bytes), written
                      here straight from the PyTorch tensors, independently of the converter.
"""
import collections
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import torch
import yaml

args = [a for a in sys.argv[1:]]
i2v = "./i2v"
if "--i2v" in args:
    k = args.index("--i2v")
    i2v = args[k + 1]
    del args[k:k + 2]
official = args[0] if args else "/tmp/official"
OUT = os.path.join("tests", "data", "convert")
LPIPS_WIDTHS = [3, 4, 5, 6, 7]

STAGE1_OVERRIDES = ["Decoder.channel_factor=1", "Decoder.spade_hidden=4", "Decoder.norm_groups=2", "Decoder.z_dim=4",
                    "Encoder.z_dim=4", "Encoder.channels=[2,2,2,2,2]", "Encoder.norm_groups=2",
                    "Discriminator_Temporal.channels=[2,2,2,2,2]", "Discriminator_Temporal.norm_groups=2",
                    "Discriminator_Patch.ndf=2"]
AE_OVERRIDES = ["AE.enc_width=1", "AE.z_dim=8", "Discriminator_Patch.ndf=2"]
CINN_OVERRIDES = ["Conditioning_Model.z_dim=8", "Flow.n_flows=2"]

ST_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
TORCH_DTYPES = {v: k for k, v in ST_DTYPES.items()}


def run(cmd):
    print("+", " ".join(cmd))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def st_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return {k: (v["dtype"], tuple(v["shape"])) for k, v in h.items()}


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def save_reference(path, tensors, meta):
    header, blobs, offset = collections.OrderedDict(), [], 0
    header["__metadata__"] = meta
    for name in sorted(tensors):
        t = tensors[name]
        raw = tensor_bytes(t)
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def random_like(name, dtype, shape, gen):
    if dtype == "U8":   # ActNorm `initialized`
        return torch.ones(shape, dtype=torch.uint8)
    if dtype == "I64":  # BatchNorm num_batches_tracked
        return torch.randint(0, 1000, shape, dtype=torch.int64, generator=gen)
    t = torch.randn(shape, generator=gen) * 0.5
    if "running_var" in name:
        t = t.abs() + 0.5
    return t


def network(header, prefix, seed):
    gen = torch.Generator().manual_seed(seed)
    return collections.OrderedDict((k[len(prefix):], random_like(k, *header[k], gen))
                                   for k in sorted(header) if k.startswith(prefix))


def with_layout(sd, name, perm):
    """sd[name] replaced by a non-contiguous view with the same values: a permutation of a contiguous tensor."""
    t = sd[name]
    inv = [perm.index(i) for i in range(t.dim())]
    base = t.permute(*perm).contiguous()     # stored in this order
    view = base.permute(*inv)                # same shape and values as t, other strides
    assert torch.equal(view, t) and not view.is_contiguous()
    sd[name] = view


def share_storage(sd, a, b):
    """sd[a] and sd[b] become slices of one storage (b at a storage offset)."""
    ta, tb = sd[a], sd[b]
    assert ta.dtype == tb.dtype and ta.dim() == 1 and tb.dim() == 1
    big = torch.cat([ta, tb])
    sd[a], sd[b] = big[:ta.numel()], big[ta.numel():]
    assert sd[b].storage_offset() == ta.numel()


def omegaconf_yaml(i2v_yaml_path, dst):
    """The config as OmegaConf.save writes it: block lists, floats with a dot (PyYAML reads 1e-05 as a string)."""
    cfg = yaml.safe_load(open(i2v_yaml_path))

    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                return v
        return v
    with open(dst, "w") as f:
        yaml.safe_dump(fix(cfg), f, default_flow_style=False, sort_keys=False, allow_unicode=True)


def main():
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="i2v_convert_fixtures_")
    try:
        run([i2v, "train-stage1", "--config", "tiny", "--out", work, "--steps", "1"] + STAGE1_OVERRIDES)
        run([i2v, "train-ae", "--config", "tiny", "--out", work, "--steps", "1"] + AE_OVERRIDES)
        run([i2v, "train-cinn", "--config", "tiny", "--out", work, "--steps", "1"] + CINN_OVERRIDES)
        h1 = st_header(os.path.join(work, "stage1.safetensors"))
        ha = st_header(os.path.join(work, "cond_ae.safetensors"))
        hc = st_header(os.path.join(work, "cinn.safetensors"))
        omegaconf_yaml(os.path.join(work, "config_stage1.yaml"), os.path.join(OUT, "config_stage1.yaml"))
        omegaconf_yaml(os.path.join(work, "config_stage2_AE.yaml"), os.path.join(OUT, "config_stage2_AE.yaml"))
        shutil.copy(os.path.join(work, "config_stage2.yaml"), os.path.join(OUT, "config_stage2.yaml"))
        s2 = yaml.safe_load(open(os.path.join(work, "config_stage2.yaml")))
        s1 = yaml.safe_load(open(os.path.join(work, "config_stage1.yaml")))
    finally:
        shutil.rmtree(work)

    # ---- stage 1 ----
    gen, enc = network(h1, "gen.", 1), network(h1, "enc.", 2)
    disc_t, disc_s = network(h1, "disc_t.", 3), network(h1, "disc_s.", 4)
    for k in gen:
        if k.endswith("weight_orig"):   # most of the generator's values (keeps the fixture small)
            gen[k] = gen[k].half()
    fc = gen["fc.weight"]
    gen["fc.weight"] = fc.t().contiguous().t()           # transposed storage, strides (1, rows)
    assert torch.equal(gen["fc.weight"], fc) and not gen["fc.weight"].is_contiguous()
    with_layout(gen, "g_1.norm_0.conv_gamma.weight", [2, 3, 1, 0])
    share_storage(gen, "head_0.norm_1.linear.bias", "head_0.conv_0.bias")
    enc["norm1.weight"] = enc["norm1.weight"].double()
    enc["conv_var.bias"] = enc["conv_var.bias"].bfloat16()
    with_layout(enc, "conv_mu.weight", [1, 0, 3, 2])
    disc_t["conv1.weight"] = disc_t["conv1.weight"].bfloat16()

    # a real optimiser state, as the official get_save_dict stores it
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(5))]
    opt = torch.optim.Adam(params, lr=2e-4, weight_decay=1e-5, amsgrad=True)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.98)
    sum((p ** 2).sum() for p in params).backward()
    opt.step()
    sched.step()
    torch.save({"epoch": 7, "state_dict": gen, "optim_state_dict": opt.state_dict(),
                "scheduler_state_dict": sched.state_dict()}, os.path.join(OUT, "gen.pth"))
    torch.save({"state_dict": enc}, os.path.join(OUT, "enc.pth.tar"), _use_new_zipfile_serialization=False)
    torch.save(disc_t, os.path.join(OUT, "disc_t.pth"))
    torch.save({"state_dict": collections.OrderedDict(("module." + k, v) for k, v in disc_s.items())},
               os.path.join(OUT, "disc_s.pth"), _use_new_zipfile_serialization=False)
    ref1 = {}
    for prefix, sd in (("gen.", gen), ("enc.", enc), ("disc_t.", disc_t), ("disc_s.", disc_s)):
        ref1.update({prefix + k: v for k, v in sd.items()})

    # ---- conditioning encoder ----
    cond = network(ha, "enc.", 5)
    torch.save({"state_dict": cond}, os.path.join(OUT, "encoder_stage2.pth"))

    # ---- cINN: the official module; its names, shapes and dtypes must be i2v's ----
    sys.path.insert(0, official)
    from stage2_cINN.modules.flow_blocks import ConditionalFlow
    z, e = s1["Decoder"]["z_dim"], s2["Conditioning_Model"]["z_dim"]
    torch.manual_seed(6)
    flow = ConditionalFlow(in_channels=z, embedding_dim=e, hidden_dim=s2["Flow"]["flow_mid_channels_factor"] * z,
                           hidden_depth=s2["Flow"]["flow_hidden_depth"], n_flows=s2["Flow"]["n_flows"],
                           conditioning_option="none", control=False)
    fsd = flow.state_dict()
    with torch.no_grad():
        for k, t in fsd.items():
            if t.dtype == torch.uint8:
                t.fill_(1)
            elif t.is_floating_point():
                t.copy_(torch.randn(t.shape) * 0.5)
    want = {k[len("flow."):]: v for k, v in hc.items() if k.startswith("flow.")}
    got = {k: (ST_DTYPES[t.dtype], tuple(t.shape)) for k, t in fsd.items()}
    assert got == want, "official ConditionalFlow and i2v's flow differ: %s" % sorted(
        set(got.items()) ^ set(want.items()))
    torch.save({"state_dict": fsd}, os.path.join(OUT, "cINN.pth"), _use_new_zipfile_serialization=False)

    # ---- LPIPS stand-in ----
    g = torch.Generator().manual_seed(7)
    lin = collections.OrderedDict(("lin%d.model.1.weight" % k, torch.rand(1, c, 1, 1, generator=g))
                                  for k, c in enumerate(LPIPS_WIDTHS))
    vgg, ref_lpips, cin = collections.OrderedDict(), {}, 3
    for n, k in zip([0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28], [1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]):
        cout = LPIPS_WIDTHS[k - 1]
        vgg["features.%d.weight" % n] = torch.randn(cout, cin, 3, 3, generator=g)
        vgg["features.%d.bias" % n] = torch.randn(cout, generator=g)
        ref_lpips["net.slice%d.%d.weight" % (k, n)] = vgg["features.%d.weight" % n]
        ref_lpips["net.slice%d.%d.bias" % (k, n)] = vgg["features.%d.bias" % n]
        cin = cout
    vgg["classifier.6.bias"] = torch.randn(10, generator=g)
    ref_lpips.update(lin)
    ref_lpips["scaling_layer.shift"] = torch.tensor([-.030, -.088, -.188]).reshape(1, 3, 1, 1)
    ref_lpips["scaling_layer.scale"] = torch.tensor([.458, .448, .450]).reshape(1, 3, 1, 1)
    torch.save(lin, os.path.join(OUT, "lpips_lin.pth"))
    torch.save(vgg, os.path.join(OUT, "vgg16_small.pth"), _use_new_zipfile_serialization=False)
    torch.save(torch.nn.Linear(2, 2), os.path.join(OUT, "whole_module.pth"))

    meta = {"torch": torch.__version__, "made_by": "tools/make_convert_fixtures.py"}
    save_reference(os.path.join(OUT, "ref_stage1.safetensors"), ref1, meta)
    save_reference(os.path.join(OUT, "ref_cond_ae.safetensors"), {"enc." + k: v for k, v in cond.items()}, meta)
    save_reference(os.path.join(OUT, "ref_cinn.safetensors"), {"flow." + k: v for k, v in fsd.items()}, meta)
    save_reference(os.path.join(OUT, "ref_lpips.safetensors"), ref_lpips,
                   dict(meta, widths=",".join(str(w) for w in LPIPS_WIDTHS)))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("wrote %s: %d files, %d bytes" % (OUT, len(os.listdir(OUT)), total))


main()
