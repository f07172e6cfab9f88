#!/usr/bin/env python3
"""Converts the official PyTorch checkpoints of CompVis/image2video-synthesis-using-cINNs into an i2v model folder.

Python 3 standard library only: PyTorch is never imported. A .pth file (the zip format that torch.save writes since
PyTorch 1.6, or the older "legacy" format, also when named .pth.tar) is a pickle whose tensors point at raw storages;
a restricted unpickler rebuilds the tensor descriptions (storage, offset, shape, strides) without running any code from
the file, and the values are copied into safetensors in C order, names unchanged apart from a prefix per network,
dtypes as stored (F32, F16, BF16, F64, I64, U8, ...; i2v converts them when it loads).

Sub-commands (each writes into the model folder --out, created if needed; existing files need --force):

  stage1   the video autoencoder: stage1.safetensors (gen. enc. [disc_t. disc_s.]) + config_stage1.yaml
      python3 tools/convert_official.py stage1 --gen best_PFVD_GEN.pth --enc best_PFVD_ENC.pth.tar \\
          --config config_stage1.yaml --out models/bair [--disc-t latest_checkpoint_DISC_t.pth] \\
          [--disc-s latest_checkpoint_DISC_s.pth]
  cond-ae  the conditioning encoder: cond_ae.safetensors (enc.) + config_stage2_AE.yaml
      python3 tools/convert_official.py cond-ae --enc Encoder_stage2.pth --config config_stage2_AE.yaml \\
          --out models/bair
  cinn     the cINN: cinn.safetensors (flow.) + config_stage2.yaml
      python3 tools/convert_official.py cinn --cinn cINN.pth --config config_stage2.yaml --out models/bair \\
          [--name cinn_control.safetensors --config-name config_stage2_control.yaml]   (a second cINN, e.g. control;
          i2v control --cinn cinn_control.safetensors --cinn-config config_stage2_control.yaml)
  model    all three from the official folders, files found by the names in config_stage2.yaml
      python3 tools/convert_official.py model --cinn-dir models/bair/stage2 --out models_i2v/bair \\
          [--stage1-dir DIR] [--ae-dir DIR] [--root .]
          (without --stage1-dir / --ae-dir the folders are First_stage_model.model_path + model_name and
          Conditioning_Model.model_path + model_name of config_stage2.yaml, relative to --root, as get_model.py does)
  lpips    the LPIPS weights: one safetensors file with the names lpips.h reads (net.slice<K>.<N>.weight/bias from
           torchvision's features.<N>.*, lin<k>.model.1.weight, scaling_layer.shift/scale)
      python3 tools/convert_official.py lpips --lin vgg.pth --vgg vgg16-397923af.pth \\
          --out models/lpips_vgg.safetensors [--widths 64,128,256,512,512]
          (--widths: the slice widths; other values only for stand-in networks in tests; the same code path)
  config   one YAML file rewritten the way i2v reads configs (see below)
      python3 tools/convert_official.py config --kind stage1|ae|cinn IN.yaml OUT.yaml
  raw      any state_dict into one safetensors file, names unchanged (optionally prefixed), no checks
      python3 tools/convert_official.py raw some.pth some.safetensors [--prefix net.]
  list     the tensors of a .pth file (name, dtype, shape), to see what a file holds
      python3 tools/convert_official.py list best_PFVD_GEN.pth

The checkpoint may be a bare state_dict or a dict holding 'state_dict' (the official scripts add 'epoch',
'optim_state_dict', 'scheduler_state_dict', which are read past and ignored). A 'module.' prefix on every key
(nn.DataParallel) is removed. Each file is checked to hold the network it is given as (e.g. --gen must have
fc.weight and head_0.*), so swapped arguments fail with a message; the full name and shape check is i2v's own when it
loads the folder (`i2v sample --model DIR`).

Configs: the YAML files that the official scripts save (OmegaConf.save) write lists as block sequences ("- 64" lines);
i2v's config reader takes flow lists, so those are folded into "[64, 128]"; everything else is copied as it is. The
files shipped in the official repository's configs/ folders are already in that form and are copied unchanged.

Exit status 0 on success, 1 with a message naming the file on any error (not a PyTorch checkpoint, truncated file,
a class the reader does not know where a tensor is needed, missing networks, ...).

Tested by tests/test_convert.c on the small official-format files of tests/data/convert/ (zip and legacy formats,
float16/bfloat16/float64, strided views, shared storages), made once with PyTorch by tools/make_convert_fixtures.py.
"""
import argparse
import codecs
import collections
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile

SCRIPT = "convert_official.py"
LEGACY_MAGIC = 0x1950a86a20f9469cfc6c

# PyTorch storage class -> (safetensors dtype, bytes per element)
STORAGE_DTYPES = {
    "FloatStorage": ("F32", 4), "DoubleStorage": ("F64", 8), "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1), "BoolStorage": ("BOOL", 1),
    "UntypedStorage": ("U8", 1), "_UntypedStorage": ("U8", 1),
}
TORCH_DTYPES = ("float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32",
                "int", "int16", "short", "int8", "uint8", "bool", "complex64", "complex128")


class ConvertError(Exception):
    pass


# ---- stand-ins for what a checkpoint's pickle refers to ------------------------------------------------------------

class StorageType:
    """torch.FloatStorage etc. as a persistent id names it."""
    def __init__(self, name):
        self.name = name


class Storage:
    """numel elements of one dtype, starting elem_offset elements into the file storage `key`."""
    def __init__(self, key, dtype, esize, numel, elem_offset=0):
        self.key, self.dtype, self.esize, self.numel, self.elem_offset = key, dtype, esize, numel, elem_offset


class Tensor:
    """A strided view of a storage, as _rebuild_tensor_v2 describes it."""
    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError("a tensor whose storage is %r" % (storage,))
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        if len(self.size) != len(self.stride):
            raise pickle.UnpicklingError("a tensor with %d sizes and %d strides" % (len(self.size), len(self.stride)))

    @property
    def dtype(self):
        return self.storage.dtype

    def numel(self):
        n = 1
        for s in self.size:
            n *= s
        return n

    def nbytes(self):
        return self.numel() * self.storage.esize

    def is_contiguous(self):
        want = 1
        for size, stride in zip(reversed(self.size), reversed(self.stride)):
            if size != 1 and stride != want:
                return False
            want *= size
        return True

    def span(self):
        """(first, last) element index used, relative to the storage view; None when empty."""
        if self.numel() == 0:
            return None
        if self.offset < 0 or any(s < 0 for s in self.stride):
            raise ConvertError("a tensor with a negative offset or stride (%d, %s)" % (self.offset, self.stride))
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        return self.offset, last


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    return Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    return data


class Opaque:
    """Anything else the pickle names: recorded, never executed. It is an error only where a tensor or a state_dict
    was needed (e.g. a whole pickled nn.Module); elsewhere (optimiser or scheduler state) it is ignored."""
    qualname = "?"

    def __init__(self, *args, **kwargs):
        self.args, self.state, self.items = args, None, []

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):
        self.items.append((key, value))

    def append(self, value):
        self.items.append(value)

    def extend(self, values):
        self.items.extend(values)


def _opaque_class(module, name):
    return type(str(name), (Opaque,), {"qualname": "%s.%s" % (module, name)})


def _codecs_encode(text, encoding="utf-8"):
    if encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("unexpected _codecs.encode(%r)" % encoding)
    return codecs.encode(text, encoding)


SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch", "Size"): lambda *a: tuple(a[0]) if a else (),
    ("torch", "device"): lambda *a: ("device",) + a,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "complex"): complex,
    ("__builtin__", "set"): set, ("__builtin__", "frozenset"): frozenset,
}


class CheckpointUnpickler(pickle.Unpickler):
    """pickle.Unpickler that maps the names a checkpoint uses to the stand-ins above and imports nothing."""
    def __init__(self, f, storages, legacy):
        super().__init__(f)
        self.storages, self.legacy = storages, legacy

    def find_class(self, module, name):
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[(module, name)]
        if module in ("torch", "torch.storage", "torch.cuda") and name in STORAGE_DTYPES:
            return StorageType(name)
        if module == "torch" and name in TORCH_DTYPES:
            return "torch." + name
        return _opaque_class(module, name)

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid,))
        if pid[0] == "module":   # a legacy file that pickles a whole model records its source code this way
            return _opaque_class("<pickled module source>", str(pid[1]))
        if pid[0] != "storage" or len(pid) < 5:
            raise pickle.UnpicklingError("unexpected persistent id %r" % (pid[:1],))
        stype, key, numel = pid[1], str(pid[2]), int(pid[4])
        name = stype.name if isinstance(stype, StorageType) else str(stype)
        if name not in STORAGE_DTYPES:
            raise pickle.UnpicklingError("unsupported storage type %s" % name)
        dtype, esize = STORAGE_DTYPES[name]
        if key not in self.storages:
            self.storages[key] = (dtype, esize, numel)
        elif self.storages[key][:2] != (dtype, esize):
            raise pickle.UnpicklingError("storage %s is used as both %s and %s" % (key, self.storages[key][0], dtype))
        view = pid[5] if self.legacy and len(pid) > 5 else None
        if view is not None:   # legacy storage view: (view key, offset, size) inside the root storage
            _, view_offset, view_size = view
            if view_offset < 0 or view_offset + view_size > numel:
                raise pickle.UnpicklingError("a storage view outside storage %s" % key)
            return Storage(key, dtype, esize, int(view_size), int(view_offset))
        return Storage(key, dtype, esize, numel)


class Checkpoint:
    """One .pth file: the unpickled object (tensors as Tensor) and access to the raw bytes of its storages."""

    def __init__(self, path):
        self.path = path
        self.storages = {}          # key -> (dtype, esize, numel)
        self.big_endian = False
        self._cache_key, self._cache = None, None
        if not os.path.isfile(path):
            raise ConvertError("%s: no such file" % path)
        with open(path, "rb") as f:
            head = f.read(16)
        if len(head) == 0:
            raise ConvertError("%s: the file is empty" % path)
        if zipfile.is_zipfile(path):
            self._open_zip()
        elif head[:2] == b"\x80\x02" or head[:1] == b"\x80":
            self._open_legacy()
        else:
            raise ConvertError(self._not_a_checkpoint(head))

    def _not_a_checkpoint(self, head):
        hint = ""
        if len(head) >= 9 and head[8:9] == b"{":
            hint = " (it looks like a safetensors file already)"
        elif head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            hint = " (a damaged or truncated zip archive)"
        return "%s: not a PyTorch checkpoint%s; expected the zip archive torch.save writes (with data.pkl) or the " \
               "legacy pickle format (magic number %#x)" % (self.path, hint, LEGACY_MAGIC)

    # -- the zip format: <root>/data.pkl, <root>/data/<key>, <root>/version [, <root>/byteorder] --
    def _open_zip(self):
        try:
            self.zip = zipfile.ZipFile(self.path)
            names = self.zip.namelist()
        except (zipfile.BadZipFile, OSError, ValueError) as err:
            raise ConvertError("%s: not a PyTorch checkpoint (a damaged zip archive: %s)" % (self.path, err))
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if not pkl:
            script = any(n.endswith("constants.pkl") or "/code/" in n for n in names)
            what = "a TorchScript archive (torch.jit.save), not a checkpoint of weights" if script \
                else "a zip archive without data.pkl"
            raise ConvertError("%s: not a PyTorch checkpoint: %s" % (self.path, what))
        self.root = pkl[0][:-len("data.pkl")]
        if self.root + "byteorder" in names:
            self.big_endian = self._zip_read(self.root + "byteorder").strip() == b"big"
        try:
            self.obj = CheckpointUnpickler(io.BytesIO(self._zip_read(pkl[0])), self.storages, False).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                KeyError) as err:
            raise ConvertError("%s: cannot read data.pkl: %s" % (self.path, err))
        for key, (dtype, esize, numel) in self.storages.items():
            name = self.root + "data/" + key
            try:
                size = self.zip.getinfo(name).file_size
            except KeyError:
                raise ConvertError("%s: storage %s is missing from the archive (truncated file?)" % (self.path, key))
            if size < numel * esize:
                raise ConvertError("%s: storage %s has %d bytes, the pickle says %d %s elements (%d bytes)"
                                   % (self.path, key, size, numel, dtype, numel * esize))

    def _zip_read(self, name):
        try:
            return self.zip.read(name)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as err:   # CRC errors, truncation
            raise ConvertError("%s: cannot read %s from the archive: %s" % (self.path, name, err))

    # -- the legacy format: magic, protocol, sys_info, the object, the storage keys, then each storage --
    def _open_legacy(self):
        self.offsets = {}
        with open(self.path, "rb") as f:
            try:
                magic = CheckpointUnpickler(f, {}, True).load()
                if magic != LEGACY_MAGIC:
                    raise ConvertError("%s: not a PyTorch checkpoint (a pickle, but without the magic number of "
                                       "torch.save's legacy format)" % self.path)
                CheckpointUnpickler(f, {}, True).load()             # protocol version
                info = CheckpointUnpickler(f, {}, True).load()      # sys_info
                if isinstance(info, dict) and info.get("little_endian") is False:
                    self.big_endian = True
                self.obj = CheckpointUnpickler(f, self.storages, True).load()
                keys = CheckpointUnpickler(f, {}, True).load()
            except ConvertError:
                raise
            except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
                    KeyError, struct.error) as err:
                raise ConvertError("%s: not a readable PyTorch checkpoint (%s: %s)"
                                   % (self.path, type(err).__name__, err))
            if not isinstance(keys, list):
                raise ConvertError("%s: the list of storage keys is missing" % self.path)
            end = os.path.getsize(self.path)
            for key in keys:
                key = str(key)
                if key not in self.storages:
                    raise ConvertError("%s: storage %s is listed but no tensor uses it" % (self.path, key))
                dtype, esize, numel = self.storages[key]
                raw = f.read(8)
                if len(raw) != 8:
                    raise ConvertError("%s: truncated before storage %s" % (self.path, key))
                (count,) = struct.unpack(">q" if self.big_endian else "<q", raw)
                start = f.tell()
                if count != numel or start + count * esize > end:
                    raise ConvertError("%s: storage %s is truncated or inconsistent (%d elements of %d bytes "
                                       "announced, %d expected, %d bytes left in the file)"
                                       % (self.path, key, count, esize, numel, end - start))
                self.offsets[key] = start
                f.seek(count * esize, 1)
            missing = [k for k in self.storages if k not in self.offsets]
            if missing:
                raise ConvertError("%s: storages %s are not in the file (truncated?)" % (self.path, missing[:3]))

    def storage_bytes(self, key):
        """The whole file storage `key`, little-endian."""
        if key == self._cache_key:
            return self._cache
        dtype, esize, numel = self.storages[key]
        if hasattr(self, "zip"):
            data = self._zip_read(self.root + "data/" + key)[:numel * esize]
        else:
            with open(self.path, "rb") as f:
                f.seek(self.offsets[key])
                data = f.read(numel * esize)
        if len(data) != numel * esize:
            raise ConvertError("%s: storage %s is truncated" % (self.path, key))
        if self.big_endian and esize > 1:
            data = b"".join(data[i:i + esize][::-1] for i in range(0, len(data), esize))
        self._cache_key, self._cache = key, data
        return data

    def tensor_bytes(self, t, name):
        """The values of t in C order (what a contiguous copy of the tensor would hold), little-endian."""
        st, es = t.storage, t.storage.esize
        span = t.span()
        if span is None:
            return b""
        if span[1] >= st.numel:
            raise ConvertError("%s: %s (shape %s, offset %d, strides %s) reaches past its storage of %d elements"
                               % (self.path, name, t.size, t.offset, t.stride, st.numel))
        data = self.storage_bytes(st.key)
        base = st.elem_offset + t.offset
        n = t.numel()
        if t.is_contiguous():
            return data[base * es:(base + n) * es]
        # A strided view (e.g. a transposed weight): one strided copy per row of the innermost dimension, in C order.
        elems = memoryview(data).cast({1: "B", 2: "H", 4: "I", 8: "Q"}[es])
        size, stride = t.size, t.stride
        inner, inner_stride = size[-1], stride[-1]
        outer = size[:-1]
        idx, out = [0] * len(outer), []
        for _ in range(n // inner):
            pos = base + sum(i * s for i, s in zip(idx, stride))
            out.append(elems[pos:pos + (inner - 1) * inner_stride + 1:inner_stride].tobytes() if inner_stride
                       else elems[pos:pos + 1].tobytes() * inner)
            for d in range(len(idx) - 1, -1, -1):
                idx[d] += 1
                if idx[d] < outer[d]:
                    break
                idx[d] = 0
        return b"".join(out)

    def state_dict(self):
        """{name: Tensor} of the file's state_dict, in file order."""
        obj = self.obj
        if isinstance(obj, dict) and "state_dict" in obj:
            obj = obj["state_dict"]
        if isinstance(obj, Opaque):
            raise ConvertError("%s: the file holds a pickled %s object, not a state_dict (in PyTorch, save "
                               "model.state_dict() instead of the model)" % (self.path, obj.qualname))
        if not isinstance(obj, dict):
            raise ConvertError("%s: expected a state_dict (a dict of tensors), found %s"
                               % (self.path, type(obj).__name__))
        out = collections.OrderedDict()
        for k, v in obj.items():
            if isinstance(v, Tensor):
                out[str(k)] = v
            elif isinstance(v, Opaque):
                raise ConvertError("%s: %s is a %s, which this reader does not know how to read (sparse, quantized "
                                   "or other special tensors are not supported)" % (self.path, k, v.qualname))
            else:
                sys.stderr.write("%s: note: %s: ignoring %s (not a tensor)\n" % (self.path, k, type(v).__name__))
        if not out:
            raise ConvertError("%s: the state_dict holds no tensors" % self.path)
        if all(k.startswith("module.") for k in out):   # saved from nn.DataParallel
            out = collections.OrderedDict((k[len("module."):], v) for k, v in out.items())
        return out


# ---- writing safetensors --------------------------------------------------------------------------------------

def write_safetensors(path, items, metadata):
    """items: [(name, Checkpoint or None, Tensor or (dtype, shape, bytes))]; written sorted by name, atomically."""
    items = sorted(items, key=lambda it: it[0])
    header, offset = collections.OrderedDict(), 0
    names = set()
    for name, ck, t in items:
        if name in names:
            raise ConvertError("%s: the tensor name %s occurs twice" % (path, name))
        names.add(name)
        if isinstance(t, Tensor):
            dtype, shape, nbytes = t.dtype, list(t.size), t.nbytes()
        else:
            dtype, shape, raw = t
            nbytes = len(raw)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    full = collections.OrderedDict([("__metadata__", {k: str(v) for k, v in metadata.items()})])
    full.update(header)
    text = json.dumps(full, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = "%s.tmp.%d" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for name, ck, t in items:
                raw = ck.tensor_bytes(t, name) if isinstance(t, Tensor) else t[2]
                if len(raw) != header[name]["data_offsets"][1] - header[name]["data_offsets"][0]:
                    raise ConvertError("%s: internal error: %s has %d bytes" % (path, name, len(raw)))
                f.write(raw)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ---- configs ----------------------------------------------------------------------------------------------------

CONFIG_SECTIONS = {"stage1": ("Encoder", "Decoder"), "ae": ("AE",), "cinn": ("Flow",)}

# Keys the current official code reads that configs saved with older versions of it may lack (the official
# repository's issues #1 and #3: 'Missing key control' in generate_samples.py), with the value every official
# config holds (for control: off, what the older code did without the key). Conversion fills the missing ones
# and says which.
OFFICIAL_DEFAULTS = {
    "stage1": [("Encoder", "res_type_encoder", "'resnet18'"), ("Encoder", "use_max_pool", "False"),
               ("Encoder", "deterministic", "False"), ("Decoder", "spectral_norm", "True")],
    "ae": [("AE", "encoder_type", "'resnet50'"), ("AE", "deterministic", "False"),
           ("AE", "use_actnorm_in_dec", "False")],
    "cinn": [("Flow", "n_flows", "20"), ("Flow", "flow_hidden_depth", "2"), ("Flow", "flow_mid_channels_factor", "8"),
             ("Conditioning_Model", "checkpoint_name", "'Encoder_stage2'"),
             ("First_stage_model", "checkpoint_encoder", "'best_PFVD_ENC'"),
             ("First_stage_model", "checkpoint_decoder", "'best_PFVD_GEN'"),
             ("Training", "control", "False")],
}


def fill_defaults(lines, kind):
    """lines with the keys of OFFICIAL_DEFAULTS[kind] that are missing added (to their section, created at the end
    when absent); returns (lines, ['Section.key: value', ...] of what was filled)."""
    filled = []
    for section, key, value in OFFICIAL_DEFAULTS[kind]:
        start = next((i for i, ln in enumerate(lines) if _strip_comment(ln) == section + ":"), None)
        if start is None:
            while lines and not lines[-1].strip():
                lines.pop()
            lines += [section + ":", "  %s: %s" % (key, value)]
            filled.append("%s.%s: %s" % (section, key, value))
            continue
        end, indent, present = start + 1, "  ", False
        while end < len(lines) and (not lines[end].strip() or lines[end][0].isspace() or lines[end].startswith("#")):
            body = _strip_comment(lines[end])
            if body.strip():
                indent = body[:len(body) - len(body.lstrip())]
                present |= body.strip().split(":")[0].strip() == key and len(indent) > 0
            end += 1
        if not present:
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1
            lines.insert(end, "%s%s: %s" % (indent, key, value))
            filled.append("%s.%s: %s" % (section, key, value))
    return lines, filled


def _strip_comment(value):
    """value without a trailing '# comment' (outside quotes)."""
    quote = None
    for i, c in enumerate(value):
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or value[i - 1] in " \t"):
            return value[:i].rstrip()
    return value.rstrip()


def convert_yaml(text, path, kind):
    """The YAML text with block lists folded into flow lists ("key:" + "- a" lines -> "key: [a, b]")."""
    lines = text.replace("\r\n", "\n").split("\n")
    out, i, changed = [], 0, False
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped in ("---", "..."):
            i += 1
            changed = True
            continue
        body = _strip_comment(line)
        if body.endswith(":") and not body.lstrip().startswith("-"):
            indent = len(line) - len(line.lstrip())
            j, items = i + 1, []
            while j < len(lines) and (lines[j].strip().startswith("- ") or lines[j].strip() == "-"):
                item_indent = len(lines[j]) - len(lines[j].lstrip())
                if item_indent < indent:
                    break
                item = _strip_comment(lines[j].strip()[1:].strip())
                if not item or (":" in item and not item.startswith(("'", '"', "["))) or item.startswith(("{", "-")):
                    raise ConvertError("%s:%d: a list of maps or nested lists; i2v's configs hold only lists of "
                                       "numbers or strings" % (path, j + 1))
                items.append(item)
                j += 1
            if items:
                out.append("%s %s" % (body, "[" + ", ".join(items) + "]"))
                i, changed = j, True
                continue
        if stripped.startswith("- "):
            raise ConvertError("%s:%d: a list item without a key above it" % (path, i + 1))
        out.append(line.rstrip())
        i += 1
    tops = [ln.split(":")[0] for ln in out if ln and not ln[0].isspace() and not ln.startswith("#") and ":" in ln]
    for section in CONFIG_SECTIONS[kind]:
        if section not in tops:
            others = [k for k, secs in CONFIG_SECTIONS.items() if all(s in tops for s in secs)]
            hint = " (it looks like a %s config)" % others[0] if others else ""
            raise ConvertError("%s: not a %s config: there is no '%s:' section%s" % (path, kind, section, hint))
    out, filled = fill_defaults(out, kind)
    for f in filled:
        print("%s: filled %s (missing; the value of every official config)" % (path, f))
    return "\n".join(out).rstrip("\n") + "\n" if changed or filled else text


def read_config(src, kind):
    """The converted text of a config file (read and checked before any output is written)."""
    try:
        with open(src, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ConvertError("%s: cannot read the config: %s" % (src, err.strerror))
    except UnicodeDecodeError:
        raise ConvertError("%s: not a YAML config (not UTF-8 text)" % src)
    return convert_yaml(text, src, kind)


def write_config(text, src, dst_dir, name):
    dst = os.path.join(dst_dir, name)
    with open(dst + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(dst + ".tmp", dst)
    print("wrote %s (from %s)" % (dst, src))


def read_yaml_scalars(path):
    """{'Section.key': 'value'} for the scalar entries of a (two-level) YAML file: enough to read
    config_stage2.yaml's folder and checkpoint names."""
    out, section = {}, None
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            body = _strip_comment(line.rstrip("\n"))
            if not body.strip() or ":" not in body:
                continue
            key, _, value = body.strip().partition(":")
            value = value.strip()
            if not body[0].isspace():
                section = key
            elif section and value:
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1]
                out[section + "." + key] = value
    return out


# ---- the networks ------------------------------------------------------------------------------------------------

# What each network's state_dict must contain (a quick check against swapped arguments; i2v checks every name).
SIGNATURES = {
    "generator (decoder.Generator)": ("fc.weight", "head_0.", "conv_img."),
    "stage-1 encoder (resnet3D.Encoder)": ("conv1.weight", "conv_mu.weight", "conv_var.weight"),
    "temporal discriminator (resnet3D.Discriminator)": ("conv1.weight", "layer.0.0."),
    "patch discriminator (NLayerDiscriminator)": ("main.0.",),
    "conditioning encoder (AE.ResnetEncoder)": ("model.conv1.weight", "model.fc."),
    "cINN (flow_blocks.ConditionalFlow)": ("sub_layers.0.norm_layer.",),
}


def network(path, what):
    ck = Checkpoint(path)
    sd = ck.state_dict()
    for key in SIGNATURES[what]:
        if not any(k == key or (key.endswith(".") and k.startswith(key)) for k in sd):
            guess = [w for w, keys in SIGNATURES.items() if w != what and
                     all(any(k == x or (x.endswith(".") and k.startswith(x)) for k in sd) for x in keys)]
            hint = "; it looks like the %s" % guess[0] if guess else ""
            raise ConvertError("%s: not the %s: it has no %s%s" % (path, what, key + ("*" if key.endswith(".") else ""),
                                                                      hint))
    if what.startswith("temporal") and "conv_mu.weight" in sd:
        raise ConvertError("%s: not the %s: it has conv_mu.weight; it looks like the stage-1 encoder" % (path, what))
    return ck, sd


def check_writable(path, force):
    if os.path.exists(path) and not force:
        raise ConvertError("%s already exists (an i2v training checkpoint?); remove it or add --force" % path)


def convert_stage(out_dir, file_name, parts, config, config_name, kind, force):
    """parts: [(prefix, path, what)] -> one safetensors file in out_dir; the config goes beside it."""
    text = read_config(config, kind)
    dst, dst_config = os.path.join(out_dir, file_name), os.path.join(out_dir, config_name)
    check_writable(dst, force)
    check_writable(dst_config, force)
    items, sources = [], []
    for prefix, path, what in parts:
        ck, sd = network(path, what)
        items += [(prefix + name, ck, t) for name, t in sd.items()]
        sources.append("%s=%s" % (prefix, os.path.basename(path)))
        print("%s: %d tensors -> %s*" % (path, len(sd), prefix))
    os.makedirs(out_dir, exist_ok=True)
    write_safetensors(dst, items, {"format": "pt", "source": "tools/convert_official.py",
                                   "converted_from": " ".join(sources)})
    print("wrote %s (%d tensors)" % (dst, len(items)))
    write_config(text, config, out_dir, config_name)


def cmd_stage1(a):
    parts = [("gen.", a.gen, "generator (decoder.Generator)"), ("enc.", a.enc, "stage-1 encoder (resnet3D.Encoder)")]
    if a.disc_t:
        parts.append(("disc_t.", a.disc_t, "temporal discriminator (resnet3D.Discriminator)"))
    if a.disc_s:
        parts.append(("disc_s.", a.disc_s, "patch discriminator (NLayerDiscriminator)"))
    convert_stage(a.out, "stage1.safetensors", parts, a.config, "config_stage1.yaml", "stage1", a.force)


def cmd_cond_ae(a):
    convert_stage(a.out, "cond_ae.safetensors", [("enc.", a.enc, "conditioning encoder (AE.ResnetEncoder)")],
                  a.config, "config_stage2_AE.yaml", "ae", a.force)


def cmd_cinn(a):
    convert_stage(a.out, a.name, [("flow.", a.cinn, "cINN (flow_blocks.ConditionalFlow)")], a.config,
                  a.config_name, "cinn", a.force)


def _find(folder, names, what):
    for n in names:
        p = os.path.join(folder, n)
        if os.path.isfile(p):
            return p
    try:   # the official code is inconsistent about case (encoder_stage2.pth / Encoder_stage2.pth)
        listing = os.listdir(folder)
    except OSError:
        raise ConvertError("%s: cannot list the folder (looking for the %s)" % (folder, what))
    for n in names:
        for f in listing:
            if f.lower() == n.lower():
                return os.path.join(folder, f)
    raise ConvertError("%s: no %s (looked for %s)" % (folder, what, ", ".join(names)))


def cmd_model(a):
    cfg2 = _find(a.cinn_dir, ["config_stage2.yaml"], "cINN config")
    v = read_yaml_scalars(cfg2)

    def folder(given, section):
        if given:
            return given
        return os.path.join(a.root, v.get(section + ".model_path", "") + v.get(section + ".model_name", ""))

    s1 = folder(a.stage1_dir, "First_stage_model")
    ae = folder(a.ae_dir, "Conditioning_Model")
    gen_name = v.get("First_stage_model.checkpoint_decoder", "best_PFVD_GEN")
    enc_name = v.get("First_stage_model.checkpoint_encoder", "best_PFVD_ENC")
    ae_name = v.get("Conditioning_Model.checkpoint_name", "Encoder_stage2")
    gen = _find(s1, [gen_name + ".pth", "best_PFVD_GEN.pth", "latest_checkpoint_GEN.pth"], "generator checkpoint")
    enc = _find(s1, [enc_name + ".pth.tar", enc_name + ".pth", "best_PFVD_ENC.pth.tar", "best_PFVD_ENC.pth",
                     "latest_checkpoint_ENC.pth"], "stage-1 encoder checkpoint")
    cond = _find(ae, [ae_name + ".pth", "encoder_stage2.pth"], "conditioning encoder checkpoint")
    cinn = _find(a.cinn_dir, ["cINN.pth"], "cINN checkpoint")
    ns = argparse.Namespace
    cmd_stage1(ns(gen=gen, enc=enc, disc_t=None, disc_s=None, out=a.out, force=a.force,
                  config=_find(s1, ["config_stage1.yaml"], "stage-1 config")))
    cmd_cond_ae(ns(enc=cond, out=a.out, force=a.force, config=_find(ae, ["config_stage2_AE.yaml"], "AE config")))
    cmd_cinn(ns(cinn=cinn, out=a.out, force=a.force, config=cfg2, name="cinn.safetensors",
                config_name="config_stage2.yaml"))


# LPIPS: torchvision vgg16().features index of each conv, and the LPIPS slice it belongs to.
VGG_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG_SLICES = [1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5]
LPIPS_MD5 = "d507d7349b931f0638a25a48a722f98a"


def cmd_lpips(a):
    widths = [int(w) for w in a.widths.split(",")]
    if len(widths) != 5 or min(widths) < 1:
        raise ConvertError("--widths: five positive slice widths, e.g. 64,128,256,512,512")
    lin_ck, vgg_ck = Checkpoint(a.lin), Checkpoint(a.vgg)
    lin, vgg = lin_ck.state_dict(), vgg_ck.state_dict()
    if widths == [64, 128, 256, 512, 512]:
        with open(a.lin, "rb") as f:
            md5 = hashlib.md5(f.read()).hexdigest()
        if md5 != LPIPS_MD5:
            sys.stderr.write("note: %s has md5 %s, not that of the official vgg.pth (%s); converting it anyway\n"
                             % (a.lin, md5, LPIPS_MD5))
    items = [("scaling_layer.shift", None, ("F32", [1, 3, 1, 1], struct.pack("<3f", -.030, -.088, -.188))),
             ("scaling_layer.scale", None, ("F32", [1, 3, 1, 1], struct.pack("<3f", .458, .448, .450)))]
    cin = 3
    for n, k in zip(VGG_CONVS, VGG_SLICES):
        cout = widths[k - 1]
        for part, shape in (("weight", (cout, cin, 3, 3)), ("bias", (cout,))):
            src = "features.%d.%s" % (n, part)
            if src not in vgg:
                raise ConvertError("%s: no %s (is this torchvision's vgg16-397923af.pth?)" % (a.vgg, src))
            if vgg[src].size != shape:
                raise ConvertError("%s: %s has shape %s, expected %s" % (a.vgg, src, vgg[src].size, shape))
            items.append(("net.slice%d.%d.%s" % (k, n, part), vgg_ck, vgg[src]))
        cin = cout
    for k, c in enumerate(widths):
        src = "lin%d.model.1.weight" % k
        if src not in lin:
            raise ConvertError("%s: no %s (is this the LPIPS v0.1 vgg.pth?)" % (a.lin, src))
        if lin[src].size != (1, c, 1, 1):
            raise ConvertError("%s: %s has shape %s, expected (1, %d, 1, 1)" % (a.lin, src, lin[src].size, c))
        items.append((src, lin_ck, lin[src]))
    out_dir = os.path.dirname(a.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    check_writable(a.out, a.force)
    write_safetensors(a.out, items, {"format": "pt", "source": "tools/convert_official.py",
                                     "converted_from": "%s %s" % (os.path.basename(a.lin), os.path.basename(a.vgg))})
    print("wrote %s (%d tensors)" % (a.out, len(items)))


def cmd_config(a):
    text = read_config(a.input, a.kind)
    with open(a.output, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s" % a.output)


def cmd_raw(a):
    ck = Checkpoint(a.file)
    sd = ck.state_dict()
    check_writable(a.out, a.force)
    meta = {"format": "pt", "source": "tools/convert_official.py", "converted_from": os.path.basename(a.file)}
    write_safetensors(a.out, [(a.prefix + k, ck, t) for k, t in sd.items()], meta)
    print("wrote %s (%d tensors)" % (a.out, len(sd)))


def cmd_list(a):
    ck = Checkpoint(a.file)
    sd = ck.state_dict()
    for name, t in sd.items():
        note = "" if t.is_contiguous() else "  (strided view)"
        print("%-60s %-5s %s%s" % (name, t.dtype, t.size, note))
    print("%d tensors, %d elements" % (len(sd), sum(t.numel() for t in sd.values())))


def main(argv):
    p = argparse.ArgumentParser(prog="convert_official.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    s = sub.add_parser("stage1", help="best_PFVD_GEN.pth + best_PFVD_ENC.pth.tar -> stage1.safetensors")
    s.add_argument("--gen", required=True, help="the generator checkpoint (best_PFVD_GEN.pth)")
    s.add_argument("--enc", required=True, help="the video encoder checkpoint (best_PFVD_ENC.pth[.tar])")
    s.add_argument("--disc-t", help="optional: the temporal discriminator (latest_checkpoint_DISC_t.pth)")
    s.add_argument("--disc-s", help="optional: the patch discriminator (latest_checkpoint_DISC_s.pth)")
    s.add_argument("--config", required=True, help="the stage-1 config (config_stage1.yaml)")
    s.set_defaults(run=cmd_stage1)
    s = sub.add_parser("cond-ae", help="encoder_stage2.pth -> cond_ae.safetensors")
    s.add_argument("--enc", required=True, help="the conditioning encoder (encoder_stage2.pth / Encoder_stage2.pth)")
    s.add_argument("--config", required=True, help="the AE config (config_stage2_AE.yaml)")
    s.set_defaults(run=cmd_cond_ae)
    s = sub.add_parser("cinn", help="cINN.pth -> cinn.safetensors")
    s.add_argument("--cinn", required=True, help="the cINN checkpoint (cINN.pth)")
    s.add_argument("--config", required=True, help="the cINN config (config_stage2.yaml)")
    s.add_argument("--name", default="cinn.safetensors", help="file name in --out (default cinn.safetensors)")
    s.add_argument("--config-name", default="config_stage2.yaml", help="config name in --out")
    s.set_defaults(run=cmd_cinn)
    s = sub.add_parser("model", help="all three stages from the official folders")
    s.add_argument("--cinn-dir", required=True, help="the folder with cINN.pth and config_stage2.yaml")
    s.add_argument("--stage1-dir", help="the stage-1 folder (default: from config_stage2.yaml)")
    s.add_argument("--ae-dir", help="the conditioning AE folder (default: from config_stage2.yaml)")
    s.add_argument("--root", default=".", help="where the paths of config_stage2.yaml start (default .)")
    s.set_defaults(run=cmd_model)
    for s in list(sub.choices.values()):
        s.add_argument("--out", required=True, help="the i2v model folder (created)")
        s.add_argument("--force", action="store_true", help="overwrite existing files")
    s = sub.add_parser("lpips", help="vgg.pth + vgg16-397923af.pth -> one LPIPS safetensors file")
    s.add_argument("--lin", required=True, help="the LPIPS v0.1 lin layers (vgg.pth)")
    s.add_argument("--vgg", required=True, help="torchvision's VGG16 (vgg16-397923af.pth)")
    s.add_argument("--out", default=os.path.join("models", "lpips_vgg.safetensors"), help="the output file")
    s.add_argument("--widths", default="64,128,256,512,512", help="slice widths (stand-in networks only)")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    s.set_defaults(run=cmd_lpips)
    s = sub.add_parser("config", help="rewrite one YAML config the way i2v reads it")
    s.add_argument("--kind", required=True, choices=sorted(CONFIG_SECTIONS), help="which stage's config")
    s.add_argument("input")
    s.add_argument("output")
    s.set_defaults(run=cmd_config)
    s = sub.add_parser("raw", help="any state_dict -> safetensors, names unchanged (with an optional prefix)")
    s.add_argument("file")
    s.add_argument("out")
    s.add_argument("--prefix", default="", help="put before every name")
    s.add_argument("--force", action="store_true", help="overwrite an existing file")
    s.set_defaults(run=cmd_raw)
    s = sub.add_parser("list", help="list the tensors of a .pth file")
    s.add_argument("file")
    s.set_defaults(run=cmd_list)
    a = p.parse_args(argv)
    if not getattr(a, "run", None):
        p.print_help()
        return 2
    try:
        a.run(a)
    except ConvertError as err:
        sys.stderr.write("%s: error: %s\n" % (SCRIPT, err))
        return 1
    except OSError as err:
        sys.stderr.write("%s: error: %s: %s\n" % (SCRIPT, err.filename or "", err.strerror or err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
