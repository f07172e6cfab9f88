#!/usr/bin/env python3
"""Converts the LPIPS weights into the one safetensors file that i2v's lpips.c reads.

usage: python3 tools/convert_lpips.py vgg.pth vgg16-397923af.pth [out.safetensors]
       (default out: models/lpips_vgg.safetensors)

  vgg.pth              the LPIPS v0.1 "vgg" lin layers (richzhang/PerceptualSimilarity lpips/weights/v0.1/vgg.pth,
                       also what the official code downloads as modules/lpips/vgg.pth,
                       md5 d507d7349b931f0638a25a48a722f98a): keys lin0.model.1.weight ... lin4.model.1.weight
  vgg16-397923af.pth   torchvision's ImageNet VGG16 (https://download.pytorch.org/models/vgg16-397923af.pth):
                       keys features.<N>.weight / .bias (the classifier is ignored)

Output names: scaling_layer.shift, scaling_layer.scale, net.slice<K>.<N>.weight/bias for the 13
convs of VGG16's first 30 feature layers (slice 1: N 0, 2; slice 2: 5, 7; slice 3: 10, 12, 14; slice 4: 17, 19, 21;
slice 5: 24, 26, 28), lin<k>.model.1.weight. Everything is float32.

Standard library only: PyTorch's .pth files (both the zip format of PyTorch >= 1.6 and the older "legacy" format in
which both of these files were saved) are pickles whose tensors point at raw storages; a restricted unpickler reads
them without importing torch and refuses any class it does not know.
"""
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile

VGG_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG_WIDTHS = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
LIN_WIDTHS = [64, 128, 256, 512, 512]
LPIPS_MD5 = "d507d7349b931f0638a25a48a722f98a"

# storage class -> (struct code, element size, safetensors dtype)
STORAGES = {
    "FloatStorage": ("f", 4, "F32"), "DoubleStorage": ("d", 8, "F64"), "HalfStorage": ("e", 2, "F16"),
    "LongStorage": ("q", 8, "I64"), "IntStorage": ("i", 4, "I32"), "ByteStorage": ("B", 1, "U8"),
}


class Storage:
    def __init__(self, kind, key, numel):
        self.kind, self.key, self.numel, self.data = kind, key, numel, None


class TensorRef:
    """A tensor as the pickle describes it: a view (offset, size, stride) of a storage."""
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numel(self):
        n = 1
        for s in self.size:
            n *= s
        return n

    def contiguous(self):
        expect, acc = [], 1
        for s in reversed(self.size):
            expect.append(acc)
            acc *= s
        return all(st == e or sz == 1 for st, e, sz in zip(self.stride, reversed(expect), self.size))

    def f32_bytes(self):
        """The values as little-endian float32 bytes, row-major."""
        code, esize, _ = STORAGES[self.storage.kind]
        if code not in "fde":
            raise ValueError("expected floating-point weights")
        n = self.numel()
        if code == "f" and self.contiguous():   # the usual case: a slice of the storage
            return self.storage.data[self.offset * 4:(self.offset + n) * 4]
        return struct.pack("<%df" % n, *self.values())

    def values(self):
        code, esize, _ = STORAGES[self.storage.kind]
        n = self.numel()
        flat = struct.unpack("<%d%s" % (self.storage.numel, code), self.storage.data[:self.storage.numel * esize])
        if self.contiguous():
            return list(flat[self.offset:self.offset + n])
        out = []
        idx = [0] * len(self.size)
        for _ in range(n):
            pos = self.offset + sum(i * s for i, s in zip(idx, self.stride))
            out.append(flat[pos])
            for d in range(len(idx) - 1, -1, -1):
                idx[d] += 1
                if idx[d] < self.size[d]:
                    break
                idx[d] = 0
        return out


def _rebuild_tensor(storage, offset, size, stride, *rest):
    return TensorRef(storage, offset, size, stride)


class StorageType:
    def __init__(self, name):
        self.name = name


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, f, storages):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGES:
            return StorageType(name)
        raise pickle.UnpicklingError("unexpected class %s.%s in a weights file" % (module, name))

    def persistent_load(self, pid):
        # zip format: ('storage', type, key, location, numel); legacy: (..., numel, view_metadata)
        if pid[0] != "storage":
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid[0],))
        kind = pid[1].name if isinstance(pid[1], StorageType) else str(pid[1])
        key, numel = str(pid[2]), pid[4]
        if kind not in STORAGES:
            raise pickle.UnpicklingError("unsupported storage type %s" % kind)
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if key not in self.storages:
            self.storages[key] = Storage(kind, key, numel)
        return self.storages[key]


def load_pth(path):
    """{name: TensorRef} from a PyTorch state_dict file (zip or legacy format)."""
    storages = {}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
            if not pkl:
                raise ValueError("%s: a zip file without data.pkl is not a PyTorch checkpoint" % path)
            root = pkl[0][:-len("data.pkl")]
            obj = RestrictedUnpickler(io.BytesIO(z.read(pkl[0])), storages).load()
            for key, st in storages.items():
                st.data = z.read(root + "data/" + key)
    else:
        with open(path, "rb") as f:
            magic = pickle.load(f)
            if magic != 0x1950a86a20f9469cfc6c:
                raise ValueError("%s: not a PyTorch file (bad magic number)" % path)
            pickle.load(f)   # protocol version
            pickle.load(f)   # system info
            obj = RestrictedUnpickler(f, storages).load()
            keys = pickle.load(f)
            for key in keys:
                st = storages[str(key)]
                (numel,) = struct.unpack("<q", f.read(8))
                esize = STORAGES[st.kind][1]
                st.data = f.read(numel * esize)
                if numel != st.numel or len(st.data) != numel * esize:
                    raise ValueError("%s: storage %s is truncated" % (path, key))
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError("%s: expected a state_dict" % path)
    out = {}
    for k, v in obj.items():
        if isinstance(v, TensorRef):
            out[k[len("module."):] if k.startswith("module.") else k] = v
    return out


def save_safetensors(path, tensors):
    """tensors: name -> (shape, little-endian float32 bytes)"""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        shape, raw = tensors[name]
        header[name] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt", "source": "tools/convert_lpips.py"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    os.replace(tmp, path)


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    lin_path, vgg_path = argv[1], argv[2]
    out = argv[3] if len(argv) > 3 else os.path.join("models", "lpips_vgg.safetensors")
    with open(lin_path, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    if md5 != LPIPS_MD5:
        print("note: %s has md5 %s, not the official %s; converting it anyway" % (lin_path, md5, LPIPS_MD5))
    lin, vgg = load_pth(lin_path), load_pth(vgg_path)
    tensors = {"scaling_layer.shift": ((1, 3, 1, 1), struct.pack("<3f", -.030, -.088, -.188)),
               "scaling_layer.scale": ((1, 3, 1, 1), struct.pack("<3f", .458, .448, .450))}
    cin = 3
    for n, cout in zip(VGG_CONVS, VGG_WIDTHS):
        k = 1 if n < 4 else 2 if n < 9 else 3 if n < 16 else 4 if n < 23 else 5
        for part, shape in (("weight", (cout, cin, 3, 3)), ("bias", (cout,))):
            src = "features.%d.%s" % (n, part)
            if src not in vgg:
                raise SystemExit("%s: missing %s (is this torchvision's vgg16-397923af.pth?)" % (vgg_path, src))
            if vgg[src].size != shape:
                raise SystemExit("%s: %s has shape %s, expected %s" % (vgg_path, src, vgg[src].size, shape))
            tensors["net.slice%d.%d.%s" % (k, n, part)] = (shape, vgg[src].f32_bytes())
        cin = cout
    for k, c in enumerate(LIN_WIDTHS):
        src = "lin%d.model.1.weight" % k
        if src not in lin:
            raise SystemExit("%s: missing %s (is this the LPIPS v0.1 vgg.pth?)" % (lin_path, src))
        if lin[src].size != (1, c, 1, 1):
            raise SystemExit("%s: %s has shape %s, expected (1, %d, 1, 1)" % (lin_path, src, lin[src].size, c))
        tensors[src] = ((1, c, 1, 1), lin[src].f32_bytes())
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    save_safetensors(out, tensors)
    print("wrote %s (%d tensors)" % (out, len(tensors)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
