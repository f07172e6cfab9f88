"""Runs the official ConditionalFlow (CompVis/image2video-synthesis-using-cINNs, PyTorch, CPU) at a reduced
size and writes its weights (official state_dict names), inputs and outputs to tests/data/flow_reference.safetensors.
tests/test_flow.c loads the weights by name and checks that i2v's flow gives the same nu and log-determinant.

usage: python3 tools/make_flow_reference.py /path/to/image2video-synthesis-using-cINNs [out.safetensors]
Needs PyTorch (e.g. Debian's python3-torch); the tests never do.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402

repo = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                         "flow_reference.safetensors")
sys.path.insert(0, repo)
from stage2_cINN.modules.flow_blocks import ConditionalFlow  # noqa: E402

Z, E, HIDDEN, DEPTH, NFLOWS, N = 8, 6, 16, 2, 5, 7
tensors = {}
for control in (0, 1):
    torch.manual_seed(1234 + control)
    emb = E + (30 if control else 0)
    flow = ConditionalFlow(in_channels=Z, embedding_dim=emb, hidden_dim=HIDDEN, hidden_depth=DEPTH,
                           n_flows=NFLOWS, conditioning_option="none", activation="lrelu", control=bool(control))
    # Larger last-layer weights so that the couplings do more than a near-identity map.
    with torch.no_grad():
        for name, p in flow.named_parameters():
            if name.endswith("main.6.weight"):
                p.mul_(4.0)
    # The first forward initialises every ActNorm from data (as in training), the second is the reference.
    init_z = torch.randn(N * 4, Z) * 1.5 + 0.3
    init_e = torch.randn(N * 4, emb)
    if control:
        init_e[:, E:] = 0
        init_e[torch.arange(N * 4), E + torch.randint(0, 30, (N * 4,))] = 1
    with torch.no_grad():
        flow(init_z, init_e)
        z = torch.randn(N, Z) * 1.5 + 0.3
        e = torch.randn(N, emb)
        nu, logdet = flow(z, e)
        z_back = flow(nu.squeeze(-1).squeeze(-1), e, reverse=True)
    prefix = "control%d." % control
    for name, t in flow.state_dict().items():
        tensors[prefix + "flow." + name] = t.numpy()
    tensors[prefix + "z"] = z.numpy()
    tensors[prefix + "embedding"] = e.numpy()
    tensors[prefix + "nu"] = nu.reshape(N, Z).numpy()
    tensors[prefix + "logdet"] = logdet.reshape(N).numpy()
    tensors[prefix + "z_back"] = z_back.reshape(N, Z).numpy()

safetensors_io.save(out, tensors, {"z_dim": Z, "embed_dim": E, "hidden": HIDDEN, "depth": DEPTH,
                                   "n_flows": NFLOWS, "torch": torch.__version__})
print("wrote", out)
