"""Runs the official stage-1 networks (CompVis/image2video-synthesis-using-cINNs, PyTorch, CPU) at reduced widths
and writes their weights (official state_dict names), inputs and outputs to tests/data/ae_reference.safetensors.
tests/test_ae.c loads the weights by name and checks that i2v's networks give the same outputs.

usage: python3 tools/make_ae_reference.py /path/to/image2video-synthesis-using-cINNs [out.safetensors] [--float64]
Needs PyTorch (e.g. Debian's python3-torch); the tests never do.
With --float64 everything is computed and stored in double precision (metadata precision=float64, about 2 MB, not
committed): `I2V_AE_REFERENCE=<file> build/opt/f64/test_ae` then checks the double build to 1e-10 instead of 1e-4.

What is written (prefixes enc., gen., disc.):
  enc   Encoder (resnet3D.py), channels 4,4,8,12,12, stride_t 1,2,2,2, stride_s 1,1,1,2, z_dim 8, on x (2,3,16,16,16):
        mu, logvar (the heads; z itself is a random draw).
  gen   Generator (decoder.py) in eval mode (spectral norm with the stored u, v), channel_factor 1, z_dim 8,
        upsample_s [1,1], upsample_t [1,1], on x0 (2,3,32,32) and z (2,8): out (2,8,3,32,32).
  disc  Discriminator (resnet3D.py) in training mode (one power iteration per spectral-normalised conv; weight_u and
        weight_v are stored before the call, after_u.* / after_v.* after it), channels 4,4,8,8,8, stride_t 2,2,2,2,
        stride_s 1,1,1,1, on x (2,3,12,16,16): logits, fmap0..3, then the gradient penalty of loss.py on that call,
        gp, and its parameter gradients grad.<name> (double back-propagation, create_graph=True).

Patches applied to the official sources before they are executed (each asserted to match exactly):
  * resnet3D.py: `self.inplanes = 64` becomes `self.inplanes = dic["channels"][0]` (the official code only works
    with a stem of 64 channels) and GroupNorm's `num_groups=16` becomes 4;
  * normalization_layer.py: the default `num_groups=16` of Spade and Norm3D becomes 2 and SPADE's hidden width 128
    becomes 8; the `.cuda()` call in Spade.forward is removed;
  * resnet3D.py: the `.cuda()` in Encoder.reparameterize is removed;
  * loss.py (for gradient_penalty): its wandb, pytorch_lightning and LPIPS imports are removed.
These only shrink the networks (i2v has the matching knobs: norm_groups, spade_hidden); the arithmetic is untouched.
The modules are executed from their source text, so the package's other imports (wandb, kornia, the data
loaders) are never needed.
"""
import os
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

args = [a for a in sys.argv[1:] if a != "--float64"]
float64 = "--float64" in sys.argv[1:]
repo = args[0]
out = args[1] if len(args) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                 "ae_reference.safetensors")
if float64:
    torch.set_default_dtype(torch.float64)
RESNET_GROUPS, GEN_GROUPS, SPADE_HIDDEN = 4, 2, 8


def patched(path, replacements):
    text = open(os.path.join(repo, path)).read()
    for old, new, count in replacements:
        found = text.count(old)
        assert found == count, "%s: expected %d occurrences of %r, found %d" % (path, count, old, found)
        text = text.replace(old, new)
    return text


def load_module(name, text):
    mod = types.ModuleType(name)
    mod.__file__ = name
    sys.modules[name] = mod
    exec(compile(text, name, "exec"), mod.__dict__)
    return mod


for pkg in ("stage1_VAE", "stage1_VAE.modules"):
    sys.modules[pkg] = types.ModuleType(pkg)
norm_layer = load_module("stage1_VAE.modules.normalization_layer", patched(
    "stage1_VAE/modules/normalization_layer.py",
    [("num_groups=16", "num_groups=%d" % GEN_GROUPS, 2),
     ("nn.Conv2d(3, 128, 3, 1, 1)", "nn.Conv2d(3, %d, 3, 1, 1)" % SPADE_HIDDEN, 1),
     ("nn.Conv2d(128, num_features", "nn.Conv2d(%d, num_features" % SPADE_HIDDEN, 2),
     ("align_corners=True).cuda()", "align_corners=True)", 1)]))
decoder = load_module("stage1_VAE.modules.decoder", patched("stage1_VAE/modules/decoder.py", []))
resnet3D = load_module("stage1_VAE.modules.resnet3D", patched(
    "stage1_VAE/modules/resnet3D.py",
    [("self.inplanes = 64", 'self.inplanes = dic["channels"][0]', 2),
     ("num_groups=16", "num_groups=%d" % RESNET_GROUPS, 9),
     ("normal_().cuda()", "normal_()", 1)]))


def randomise(module, seed):
    """Every parameter drawn afresh so that each one matters at O(1): weights with unit-variance outputs,
    biases and norm shifts +-0.2, norm scales 1 +- 0.2 (the official inits leave, e.g., SPADE almost off)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            u = torch.rand(p.shape, generator=g) * 2 - 1
            if p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(u * (3.0 / fan_in) ** 0.5)
            elif name.endswith("bias"):
                p.copy_(0.2 * u)
            else:
                p.copy_(1 + 0.2 * u)


tensors = {}


def put(prefix, state):
    for name, t in state.items():
        tensors[prefix + name] = t.detach().numpy().copy()


torch.manual_seed(2021)

# ---- encoder ----------------------------------------------------------------------------------------------------
enc_cfg = {"res_type_encoder": "resnet18", "use_max_pool": False, "z_dim": 8, "channels": [4, 4, 8, 12, 12],
           "stride_t": [1, 2, 2, 2], "stride_s": [1, 1, 1, 2], "deterministic": False}
enc = resnet3D.Encoder(enc_cfg)
randomise(enc, 1)
x = torch.rand(2, 3, 16, 16, 16) * 2 - 1
with torch.no_grad():
    _, mu, logvar = enc(x)
put("enc.", enc.state_dict())
tensors["enc.x"] = x.numpy()
tensors["enc.mu"] = mu.numpy()
tensors["enc.logvar"] = logvar.numpy()

# ---- generator (eval mode) ----------------------------------------------------------------------------------------
gen_cfg = {"channel_factor": 1, "z_dim": 8, "upsample_s": [1, 1], "upsample_t": [1, 1], "spectral_norm": True}
gen = decoder.Generator(gen_cfg)
randomise(gen, 2)
gen.eval()
x0 = torch.rand(2, 3, 32, 32) * 2 - 1
z = torch.randn(2, 8)
with torch.no_grad():
    video = gen(x0, z)
put("gen.", gen.state_dict())
tensors["gen.x0"] = x0.numpy()
tensors["gen.z"] = z.numpy()
tensors["gen.out"] = video.numpy()

# ---- temporal discriminator (training mode) and the gradient penalty ------------------------------------------------
disc_cfg = {"res_type_encoder": "resnet18", "use_max_pool": True, "spectral_norm": True, "channels": [4, 4, 8, 8, 8],
            "stride_t": [2, 2, 2, 2], "stride_s": [1, 1, 1, 1], "deterministic": False, "eval_seq_length": 16}
disc = resnet3D.Discriminator(disc_cfg)
randomise(disc, 3)
disc.train()
put("disc.", disc.state_dict())   # u, v before the call
xd = (torch.rand(2, 3, 12, 16, 16) * 2 - 1).requires_grad_()
pred, fmaps = disc(xd)
loss_module = load_module("stage1_VAE.modules.loss", patched(
    "stage1_VAE/modules/loss.py",
    [("import wandb\n", "", 1), ("from pytorch_lightning.metrics.functional import ssim, psnr\n", "", 1),
     ("from stage2_cINN.AE.modules.LPIPS import LPIPS\n", "", 1)]))
gp = loss_module.gradient_penalty(pred, xd)
disc.zero_grad()
gp.backward()
for name, p in disc.named_parameters():
    tensors["disc.grad." + name] = p.grad.numpy().copy()
for name, b in disc.named_buffers():
    tensors["disc.after." + name] = b.numpy().copy()
tensors["disc.x"] = xd.detach().numpy()
tensors["disc.logits"] = pred.detach().numpy()
for i, f in enumerate(fmaps):
    tensors["disc.fmap%d" % i] = f.detach().numpy()
tensors["disc.gp"] = np.array(gp.item())

dtype = np.float64 if float64 else np.float32
safetensors_io.save(out, {k: np.asarray(v, dtype=dtype) for k, v in tensors.items()},
                    {"torch": torch.__version__, "resnet_groups": RESNET_GROUPS, "gen_groups": GEN_GROUPS,
                     "spade_hidden": SPADE_HIDDEN, "precision": "float64" if float64 else "float32"})
print("wrote", out, os.path.getsize(out), "bytes")
