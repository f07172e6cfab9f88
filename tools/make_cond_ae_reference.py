"""Runs the official PatchGAN, conditioning encoder (ResnetEncoder, InstanceNorm and BatchNorm), LPIPS and
BigGAN decoder of CompVis/image2video-synthesis-using-cINNs in PyTorch on the CPU at reduced widths and writes
their weights (official state_dict names), inputs and outputs to small safetensors files under tests/data/:

  patchgan_reference.safetensors   NLayerDiscriminator (stage1_VAE/modules/patch_disc.py)
  lpips_reference.safetensors      LPIPS (stage2_cINN/AE/modules/LPIPS.py, vgg16.py)
  cond_ae_reference.safetensors    ResnetEncoder + BigGANDecoderWrapper (stage2_cINN/AE/modules/AE.py,
                                   generator.py) and one AE training step (modules/loss.py)

tests/test_patchgan.c, tests/test_lpips.c and tests/test_cond_ae.c load the weights by name and compare.

usage: python3 tools/make_cond_ae_reference.py /path/to/image2video-synthesis-using-cINNs [outdir]
Needs PyTorch and torchvision (Debian: python3-torch, python3-torchvision); the tests never do.

Reduced widths. The official modules hard-code some sizes; this script changes them only as follows:
  - PatchGAN: ndf 4 instead of 64 (a constructor argument, no patching).
  - ResnetEncoder: torchvision's resnet50 is replaced by torchvision's own ResNet class built with
    Bottleneck blocks [1, 1, 1, 1] and base width 8 (the `width_per_group` argument scales the inner
    width of each bottleneck; `inplanes` and the stage widths are patched to 8, 16, 32, 64 by building
    the layers after setting `inplanes`). The forward code (ResnetEncoder.features/forward) is the
    official one, unchanged.
  - LPIPS: the VGG16 feature stack is torchvision's `make_layers` with every width divided by 8; the
    module is assembled without LPIPS.__init__ (which downloads weights), lin weights are random and
    non-negative.
  - BigGAN decoder: Generator64/128 are built with chn = 4 instead of 96 (a constructor argument), the
    class-embedding MLP with hidden 32 and 16 classes, the class embedding `linear` 16 -> 12 instead of
    1000 -> 128, so the GBlock condition width is split + 12. update_G_linear's hard-coded output size
    16 * 16 * 96 is replaced by 4 * 4 * 16 * chn (equal for chn = 96).
"""
import os
import sys
import types

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

repo = sys.argv[1]
outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                            "tests", "data")
sys.path.insert(0, repo)
# The official modules import packages that only serve downloads and logging; stub them.
for name in ("requests", "tqdm", "wandb"):
    if name not in sys.modules:
        try:
            __import__(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.tqdm = lambda *a, **k: None
            stub.log = lambda *a, **k: None
            sys.modules[name] = stub


def sd_numpy(module, prefix=""):
    return {prefix + k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def round_f16_(module):
    """Rounds every float parameter and buffer to a float16 value, so that storing it as F16 is exact (the
    reference files stay small); the reference computations then run in float32 on these values."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype == torch.float32:
                t.copy_(t.half().float())


def sd_f16(module, prefix=""):
    """state_dict with float32 tensors stored as F16 (exact after round_f16_), others unchanged."""
    out = {}
    for k, v in module.state_dict().items():
        a = v.detach().numpy().copy()
        out[prefix + k] = a.astype(np.float16) if a.dtype == np.float32 else a
    return out


def f16_input(*shape, scale=1.0, offset=0.0, uniform=False):
    x = torch.rand(*shape) * 2 - 1 if uniform else torch.randn(*shape)
    return (x * scale + offset).half().float()


# ---------------------------------------------------------------------------------------------------------
# PatchGAN
# ---------------------------------------------------------------------------------------------------------
def make_patchgan():
    from stage1_VAE.modules.patch_disc import NLayerDiscriminator
    torch.manual_seed(101)
    cfg = {"in_channels": 3, "ndf": 4, "n_layers": 3, "use_actnorm": True, "spectral_norm": True}
    d = NLayerDiscriminator(cfg)
    round_f16_(d)
    t = sd_f16(d, "init.")              # before any call: ActNorm not initialised
    x1 = f16_input(3, 3, 32, 32, scale=0.7, offset=0.1)
    x2 = f16_input(2, 3, 32, 32)
    d.train()
    x1.requires_grad_(True)
    y1 = d(x1)                          # initialises the ActNorms, one power iteration
    (y1 * torch.linspace(-1, 1, y1.numel()).reshape(y1.shape)).sum().backward()
    t["x1"], t["y1"], t["dx1"] = x1.detach().numpy().astype(np.float16), y1.detach().numpy(), x1.grad.numpy()
    for k, p in d.named_parameters():
        t["grad1." + k] = p.grad.numpy().copy()
    with torch.no_grad():
        y2 = d(x2)                      # a second power iteration
        t.update({k: v for k, v in sd_numpy(d, "after2.").items() if not k.endswith(("weight_orig", "bias"))})
        d.eval()
        y3 = d(x2)                      # stored u, v
    t["x2"], t["y2"], t["y3"] = x2.numpy().astype(np.float16), y2.numpy(), y3.numpy()
    safetensors_io.save(os.path.join(outdir, "patchgan_reference.safetensors"), t,
                        {"ndf": 4, "n_layers": 3, "torch": torch.__version__})
    print("patchgan: %d tensors" % len(t))


# ---------------------------------------------------------------------------------------------------------
# LPIPS
# ---------------------------------------------------------------------------------------------------------
LPIPS_WIDTHS = [4, 8, 16, 32, 32]   # VGG16's [64, 128, 256, 512, 512] / 16


_lpips = None


def lpips_module():
    """The official LPIPS at reduced widths with random F16-valued weights (built once: the AE step uses it too)."""
    global _lpips
    if _lpips is not None:
        return _lpips
    import torchvision
    from stage2_cINN.AE.modules import LPIPS as L
    from stage2_cINN.AE.modules import vgg16 as V
    w = LPIPS_WIDTHS
    cfg = [w[0], w[0], "M", w[1], w[1], "M", w[2], w[2], w[2], "M", w[3], w[3], w[3], "M", w[4], w[4], w[4], "M"]
    torch.manual_seed(202)
    features = torchvision.models.vgg.make_layers(cfg)
    # vgg16.py takes `models.vgg16(pretrained=True).features`; LPIPS.__init__ downloads the lin weights.
    V.models = types.SimpleNamespace(vgg16=lambda pretrained=False: types.SimpleNamespace(features=features))
    L.LPIPS.load_from_pretrained = lambda self, name="vgg_lpips": None
    m = L.LPIPS()
    m.chns = list(w)   # LPIPS hard-codes [64, 128, 256, 512, 512] for its lin layers: rebuild them
    for k in range(5):
        lin = L.NetLinLayer(w[k], use_dropout=True)
        with torch.no_grad():
            lin.model[1].weight.uniform_(0, 2.0 / w[k])
        setattr(m, "lin%d" % k, lin)
    for p in m.parameters():
        p.requires_grad = False
    m.eval()                           # the deterministic value (dropout off) is what can be compared
    round_f16_(m)
    _lpips = m
    return m


def make_lpips():
    m = lpips_module()
    w = LPIPS_WIDTHS
    torch.manual_seed(203)
    t = sd_f16(m, "lpips.")
    x = f16_input(2, 3, 24, 20, uniform=True).requires_grad_(True)
    y = f16_input(2, 3, 24, 20, uniform=True).requires_grad_(True)
    d = m(x, y)
    (d.reshape(-1) * torch.tensor([1.0, -0.5])).sum().backward()
    t.update({"x": x.detach().numpy().astype(np.float16), "y": y.detach().numpy().astype(np.float16),
              "d": d.detach().numpy(),
              "dx": x.grad.numpy(), "dy": y.grad.numpy()})
    with torch.no_grad():
        t["d_same"] = m(x, x).numpy()
    safetensors_io.save(os.path.join(outdir, "lpips_reference.safetensors"), t,
                        {"widths": w, "torch": torch.__version__})
    print("lpips: %d tensors" % len(t))


# ---------------------------------------------------------------------------------------------------------
# conditioning autoencoder: ResnetEncoder, BigGAN decoder, SelfAttention, one Loss.forward step
# ---------------------------------------------------------------------------------------------------------
ENC_WIDTH, ENC_BLOCKS = 4, [1, 2, 1, 1]
DEC_CHN, DEC_CLASSES, DEC_HIDDEN, DEC_EMB = 4, 16, 32, 12
Z64 = 44                       # 4 GBlocks x 10 + a first code of 4


def small_resnet(pretrained=False, norm_layer=None):
    """torchvision's ResNet with Bottleneck blocks ENC_BLOCKS and base width ENC_WIDTH (resnet50: [3, 4, 6, 3],
    64), built and initialised exactly as ResNet.__init__ does otherwise."""
    from torchvision.models.resnet import Bottleneck, ResNet
    m = ResNet.__new__(ResNet)
    nn.Module.__init__(m)
    w = ENC_WIDTH
    m._norm_layer, m.inplanes, m.dilation, m.groups, m.base_width = norm_layer, w, 1, 1, 64
    m.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = norm_layer(w)
    m.relu = nn.ReLU(inplace=True)
    m.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    m.layer1 = m._make_layer(Bottleneck, w, ENC_BLOCKS[0])
    m.layer2 = m._make_layer(Bottleneck, 2 * w, ENC_BLOCKS[1], stride=2)
    m.layer3 = m._make_layer(Bottleneck, 4 * w, ENC_BLOCKS[2], stride=2)
    m.layer4 = m._make_layer(Bottleneck, 8 * w, ENC_BLOCKS[3], stride=2)
    m.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    m.fc = nn.Linear(8 * w * Bottleneck.expansion, 1000)
    for mod in m.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(mod, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(mod.weight, 1)
            nn.init.constant_(mod.bias, 0)
    return m


def make_encoder(norm, in_size, z_dim, seed):
    from stage2_cINN.AE.modules import AE
    AE.models = types.SimpleNamespace(resnet18=None, resnet34=None, resnet50=small_resnet, resnet101=None)
    torch.manual_seed(seed)
    enc = AE.ResnetEncoder({"z_dim": z_dim, "deterministic": False, "in_size": in_size,
                            "encoder_type": "resnet50", "norm": norm})
    round_f16_(enc)
    return enc


def make_decoder(seed):
    """BigGANDecoderWrapper at 64 px with chn DEC_CHN, DEC_CLASSES classes, ClassUp hidden DEC_HIDDEN and a
    class embedding of DEC_EMB (the official 96, 1000, 2000, 128 are constants of the classes)."""
    from stage2_cINN.AE.modules import AE, generator
    torch.manual_seed(seed)
    w = AE.BigGANDecoderWrapper.__new__(AE.BigGANDecoderWrapper)
    nn.Module.__init__(w)
    w.do_pre_processing = False
    w.map_to_class_embedding = AE.ClassUp(Z64, depth=2, hidden_dim=DEC_HIDDEN, use_sigmoid=False, out_dim=DEC_CLASSES)
    # Generator64's GBlock condition width is code_dim + 18 (138 = 10 + 128 with the default code_dim 120):
    # code_dim = 10 + DEC_EMB - 18 makes it 10 + DEC_EMB.
    g = generator.VariableDimGenerator64(Z64, 10 + DEC_EMB - 18, DEC_CLASSES, DEC_CHN, use_actnorm=False)
    g.linear = nn.Linear(DEC_CLASSES, DEC_EMB, bias=False)
    g = generator.update_G_linear(g, Z64 - 4 * 10, n_out=4 * 4 * 16 * DEC_CHN)
    w.decoder = g
    round_f16_(w)
    return w


def sub(t, module, prefix, names):
    for n in names:
        t[prefix + n] = dict(module.named_parameters())[n].grad.numpy().copy()


def make_cond_ae():
    t = {}
    # ---- encoder with InstanceNorm, 64 px (what BAIR uses) ----
    enc = make_encoder("in", 64, Z64, 301)
    enc.train()
    t.update(sd_f16(enc, "enc_in."))
    x = f16_input(2, 3, 64, 64, uniform=True).requires_grad_(True)
    h = enc(x)
    (h * torch.linspace(-1, 1, h.numel()).reshape(h.shape)).sum().backward()
    t["enc_in_x"] = x.detach().numpy().astype(np.float16)
    t["enc_in_h"] = h.detach().numpy()
    sub(t, enc, "enc_in_grad.", ["model.conv1.weight", "model.layer2.1.conv2.weight",
                                  "model.layer4.0.downsample.0.weight", "model.fc.sub_layers.0.bias"])
    enc_in = enc
    # ---- encoder with BatchNorm, 64 px (at 32 px the official constructor's batch-1 pass fails in layer4):
    #      training call, running statistics, eval call ----
    enc = make_encoder("bn", 64, 6, 302)
    t.update(sd_f16(enc, "enc_bn."))  # running statistics already moved once by _get_spatial_size
    enc.train()
    x = f16_input(2, 3, 64, 64, uniform=True)
    h = enc(x)
    (h * torch.linspace(-1, 1, h.numel()).reshape(h.shape)).sum().backward()
    t["enc_bn_x"] = x.numpy().astype(np.float16)
    t["enc_bn_h"] = h.detach().numpy()
    sub(t, enc, "enc_bn_grad.", ["model.conv1.weight", "model.bn1.weight", "model.layer3.0.bn2.bias",
                                  "model.layer1.0.downsample.1.weight", "model.fc.sub_layers.0.weight"])
    t.update({k: v for k, v in sd_numpy(enc, "enc_bn_after.").items() if "running" in k or "num_batches" in k})
    enc.eval()
    with torch.no_grad():
        t["enc_bn_h_eval"] = enc(x).numpy()
    # ---- BigGAN decoder, 64 px ----
    dec = make_decoder(303)
    t.update(sd_f16(dec, "dec."))
    dec.train()
    z = f16_input(2, Z64).requires_grad_(True)
    y = dec(z)
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    t["dec_z"] = z.detach().numpy().astype(np.float16)
    t["dec_y"] = y.detach().numpy()
    t["dec_dz"] = z.grad.numpy()
    sub(t, dec, "dec_grad.", ["decoder.colorize.module.weight_bar", "decoder.G_linear.module.weight_bar",
                               "decoder.GBlock.0.HyperBN.gamma_embed.module.weight_bar",
                               "decoder.GBlock.3.conv0.module.weight_bar", "map_to_class_embedding.main.0.weight",
                               "decoder.linear.weight", "decoder.ScaledCrossReplicaBN.weight"])
    dec.eval()
    with torch.no_grad():
        t["dec_y_eval"] = dec(z[:1]).numpy()
    dec_state = {k: v.clone() for k, v in dec.state_dict().items()}
    # ---- SelfAttention(16) at 8x8 with gamma 0.7 ----
    from stage2_cINN.AE.modules import generator
    torch.manual_seed(304)
    att = generator.SelfAttention(16)
    with torch.no_grad():
        att.gamma.fill_(0.7)
    round_f16_(att)
    t.update(sd_f16(att, "attn."))
    xa = f16_input(2, 16, 8, 6).requires_grad_(True)
    ya = att(xa)
    (ya * torch.linspace(-1, 1, ya.numel()).reshape(ya.shape)).sum().backward()
    t["attn_x"], t["attn_y"], t["attn_dx"] = xa.detach().numpy().astype(np.float16), ya.detach().numpy(), xa.grad.numpy()
    sub(t, att, "attn_grad.", ["gamma", "theta.module.weight_bar", "phi.module.weight_bar", "g.module.weight_bar",
                                "o_conv.module.weight_bar"])
    # ---- one Loss.forward step (AE/modules/loss.py) from the same initial state, in warm-up and after ----
    make_step(t, enc_in, dec, dec_state)
    safetensors_io.save(os.path.join(outdir, "cond_ae_reference.safetensors"), t,
                        {"enc_width": ENC_WIDTH, "enc_blocks": ENC_BLOCKS, "dec_chn": DEC_CHN, "z64": Z64,
                         "torch": torch.__version__})
    print("cond_ae: %d tensors" % len(t))


class RecordingAdam(torch.optim.Adam):
    """torch.optim.Adam that keeps a copy of the gradients it is asked to apply."""
    def step(self, closure=None):
        self.seen = [p.grad.detach().clone() if p.grad is not None else None
                     for g in self.param_groups for p in g["params"]]
        return super().step(closure)


def make_step(t, enc, dec, dec_state):
    import copy
    from stage1_VAE.modules.patch_disc import NLayerDiscriminator
    from stage2_cINN.AE.modules import AE, loss as L
    dec.load_state_dict(dec_state)
    torch.manual_seed(305)
    disc = NLayerDiscriminator({"in_channels": 3, "ndf": 4, "n_layers": 3, "use_actnorm": True, "spectral_norm": True})
    round_f16_(disc)
    t.update(sd_f16(disc, "step.disc."))
    x = f16_input(2, 3, 64, 64, uniform=True)
    t["step.x"] = x.numpy().astype(np.float16)
    x = x.double()
    # The step runs in float64: the gradients of the first encoder layers pass through LPIPS, the decoder and
    # the whole encoder (InstanceNorm on 2x2 maps), where float32 rounding alone reaches 1e-4.
    for tag, epoch in (("warm", 0), ("gan", 20)):
        net = AE.BigAE.__new__(AE.BigAE)
        nn.Module.__init__(net)
        net.be_deterministic = False
        net.encoder = copy.deepcopy(enc).double()
        net.decoder = copy.deepcopy(dec).double()
        d = copy.deepcopy(disc).double()
        lf = L.Loss.__new__(L.Loss)
        nn.Module.__init__(lf)
        lf.vgg_loss = copy.deepcopy(lpips_module()).double()   # eval mode: deterministic (dropout off)
        lf.kl_weight, lf.disc_factor, lf.disc_weight, lf.disc_start = 1e-5, 1, 1, 20
        lf.logvar = nn.Parameter(torch.zeros((), dtype=torch.float64))
        opt_g = RecordingAdam(net.parameters(), lr=2e-4, weight_decay=0)
        opt_d = RecordingAdam(d.parameters(), lr=2e-4, weight_decay=0)
        net.train()
        d.train()
        logger = []
        recon, rec = lf(x, net, d, [opt_g, opt_d], epoch, logger)
        log = logger[0]
        for k in ("Loss", "Loss_recon", "Loss_nll", "L_KL", "Loss_G", "L_disc", "Logits_real", "Logits_fake",
                  "Disc_weight"):
            t["step.%s.%s" % (tag, k)] = np.array(log[k], dtype=np.float64)
        names = [n for n, _ in net.named_parameters()]
        keep = ["decoder.decoder.colorize.module.weight_bar", "encoder.model.fc.sub_layers.0.bias",
                "decoder.decoder.GBlock.3.conv1.module.weight_bar", "encoder.model.conv1.weight"]
        for n, gr in zip(names, opt_g.seen):
            if n in keep:
                t["step.%s.grad.%s" % (tag, n)] = gr.numpy().astype(np.float32)
        if hasattr(opt_d, "seen"):
            dnames = [n for n, _ in d.named_parameters()]
            for n, gr in zip(dnames, opt_d.seen):
                if n in ("main.0.weight_orig", "main.11.weight_orig", "main.3.loc", "main.9.scale"):
                    t["step.%s.dgrad.%s" % (tag, n)] = gr.numpy().astype(np.float32)
        t["step.%s.disc_stepped" % tag] = np.array(1 if hasattr(opt_d, "seen") else 0, dtype=np.int64)


if __name__ == "__main__":
    make_patchgan()
    make_lpips()
    make_cond_ae()
