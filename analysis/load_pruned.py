"""A passlab run file's pruned network, back in PyTorch.

    from analysis.load_pruned import load_pruned
    model = load_pruned("results/runs/077f368a54aa.h5")      # torch.nn.Module, eval mode
    logits = model(x)   # x: [N, C, S, S] normalised like passlab's loader: (pixels/255 - mean) / std

The architecture is torchvision's (ResNet-18/34/50, VGG-BN, MobileNetV2; ResNet-20/56 from
analysis/models.py, same module names) with every conv / BN / linear sized like the file's
/weights (the compact model passlab fine-tuned and evaluated), so the state_dict loads strictly.
Works for dense model files (results/dense/*.h5) too, and for weight files with an ``arch``
attribute (analysis/export_torchvision.py) when ``input_size`` is given.

The stem (cifar | imagenet, config ``model.stem``; "auto" = cifar below 64 px) needs the input
size: it comes from ``data.input_size``, the PASS prompt's size, or, failing those, the input
size at which the rebuilt model's MAC count equals the file's ``/summary`` macs. The rebuilt
model's MACs are always checked against ``/summary`` macs (an error if they differ).

The inference form, as passlab times it (models/fold.hpp): ``fold_batchnorm(model)`` returns a
copy with every BatchNorm folded into the convolution before it (torch.fx), optionally in
channels-last memory format; ``save_torchscript(model, path, example)`` writes it as a TorchScript
file a deployment loads with ``torch.jit.load`` (no passlab, no analysis package needed):

    folded = fold_batchnorm(load_pruned(path))
    save_torchscript(folded, "pruned.pt", torch.randn(1, 3, 32, 32))

Weights holding NaN or inf are refused (DamagedRunError); ``load_pruned(path, verify=True)`` first
checks the whole file as the report does (layout, content digest; pure Python, about 0.5 s per MB).

Runs fine-tuned with ``finetune.keep_prompt = true`` expect the visual prompt in front:
``load_pruned(path, with_prompt=True, mean=..., std=...)`` (mean/std: the store's per-channel
normalisation; read from the store named in /config when that file is reachable).
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from . import integrity, models
from .runs import SCHEMA, DamagedRunError, natural_key

HEADS = {"resnet": ("fc.weight",), "vgg": ("classifier.6.weight", "classifier.0.weight"),
         "mobilenet_v2": ("classifier.1.weight",)}
FIRST_CONV = {"resnet": "conv1.weight", "vgg": "features.0.weight", "mobilenet_v2": "features.0.0.weight"}


def _family(arch):
    if arch.startswith("resnet"):
        return "resnet"
    if arch.startswith("vgg"):
        return "vgg"
    return arch


@dataclasses.dataclass
class PrunedInfo:
    path: Path
    arch: str
    stem: str
    in_channels: int
    input_size: int
    num_classes: int
    macs: int                  # of the rebuilt model at input_size (== /summary macs when present)
    dense_macs: int | None
    kind: str                  # prune | dense | weights
    attrs: dict
    widths: dict               # group -> (kept, dense width), prune files only
    keep_prompt: bool

    def describe(self) -> str:
        lines = [f"{self.path}: {self.kind} {self.arch} ({self.stem} stem), {self.in_channels}x{self.input_size}x"
                 f"{self.input_size} input, {self.num_classes} classes, {self.macs:,} MACs"
                 + (f" ({100 * self.macs / self.dense_macs:.1f}% of dense {self.dense_macs:,})" if self.dense_macs else "")]
        for k in ("method", "budget", "seed", "run_id", "dataset"):
            if k in self.attrs:
                lines.append(f"  {k}: {self.attrs[k]}")
        if self.widths:
            lines.append("  kept channels per group:")
            for g, (k, w) in self.widths.items():
                lines.append(f"    {g:<28} {k:>5} / {w:<5} ({100 * k / w:5.1f}%)")
        if self.keep_prompt:
            lines.append("  fine-tuned with the visual prompt (finetune.keep_prompt): use with_prompt=True")
        return "\n".join(lines)


class VisualPrompt(nn.Module):
    """passlab's visual prompt (pass/hypernet.cpp): x normalised -> normalise(clamp(pixels + V, 0, 1))."""

    def __init__(self, image, mean, std):
        super().__init__()
        c = image.shape[0]
        self.register_buffer("image", torch.as_tensor(image, dtype=torch.float32))
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype=np.float32)).view(1, c, 1, 1))
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)).view(1, c, 1, 1))

    def forward(self, x):
        pixels = x * self.std + self.mean
        return (torch.clamp(pixels + self.image.unsqueeze(0), 0.0, 1.0) - self.mean) / self.std


class Prompted(nn.Sequential):
    """prompt followed by the pruned network (modules 'prompt' and 'model')."""

    def __init__(self, prompt, model):
        super().__init__()
        self.add_module("prompt", prompt)
        self.add_module("model", model)


def _read(path):
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        raise DamagedRunError(path, f"cannot be opened as HDF5 ({e})") from None
    try:
        with f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
                     for k, v in f.attrs.items()}
            if "status" in attrs and attrs["status"] != "complete":
                raise ValueError(f"{path}: status '{attrs['status']}': only complete files hold final weights")
            if "weights" not in f:
                raise ValueError(f"{path}: no /weights (output.save_weights = false when it ran?)")
            state = {k: np.asarray(v[()]) for k, v in f["weights"].items()}
            config = tomllib.loads(f["config"][()].decode() if isinstance(f["config"][()], bytes)
                                   else str(f["config"][()])) if "config" in f else {}
            summary = dict(f["summary"].attrs) if "summary" in f else {}
            summary = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in summary.items()}
            prompt = np.asarray(f["prompt/image"][()]) if "prompt/image" in f else None
            widths = {}
            if "keep" in f and "masks" in f:
                for g in sorted(f["keep"].keys(), key=natural_key):
                    widths[g] = (int(f["keep"][g].shape[0]), int(f["masks"][g].shape[0]))
            extra = {k: np.asarray(f[k][()]) for k in ("input", "logits") if k in f}
    except (ValueError, DamagedRunError):
        raise
    except Exception as e:
        raise DamagedRunError(path, f"unreadable ({type(e).__name__}: {e})") from None
    # Always, and cheap: a network with NaN or inf weights is never handed out as a model.
    bad = [k for k, v in state.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if bad:
        raise DamagedRunError(path, integrity.NON_FINITE + ", ".join(f"/weights/{k}" for k in bad[:6])
                              + (f" and {len(bad) - 6} more" if len(bad) > 6 else ""))
    return attrs, state, config, summary, prompt, widths, extra


def _candidate_stems(arch, state, stem_cfg):
    if stem_cfg in ("cifar", "imagenet"):
        return [stem_cfg]
    fam = _family(arch)
    if fam == "resnet":
        return ["imagenet" if state["conv1.weight"].shape[-1] == 7 else "cifar"]
    if fam == "vgg":
        return ["imagenet" if "classifier.3.weight" in state else "cifar"]
    return ["cifar", "imagenet"]


def _shell(arch, num_classes, in_channels, stem, state):
    with torch.device("meta"):
        m = models.build(arch, num_classes, in_channels, stem)
        models.resize_to_state(m, state)
    return m


def _find_size(count, target, lo, hi):
    """Smallest size in [lo, hi] with count(size) == target (count is non-decreasing), else None."""
    a, b = lo, hi
    while a < b:
        mid = (a + b) // 2
        if count(mid) < target:
            a = mid + 1
        else:
            b = mid
    try:
        return a if count(a) == target else None
    except RuntimeError:  # the feature map vanished
        return None


def load_pruned(path, input_size: int | None = None, device="cpu", return_info=False, with_prompt=False,
                mean=None, std=None, verify=False):
    """The pruned (or dense) model of a passlab result file as an eval-mode torch module.

    input_size: the input side when the file does not tell (only needed for stem "auto" without
    /summary). with_prompt: prepend the run's visual prompt (needs mean/std unless the store named
    in /config can be opened). return_info: also return a :class:`PrunedInfo`. verify: first check
    a dense or run file as the report does (analysis/integrity.py: layout, content digest, finite
    values; pure Python, about 0.5 s per MB) and raise DamagedRunError naming what is wrong.
    Without it the weights are still checked to be finite (DamagedRunError otherwise)."""
    path = Path(path)
    if verify:
        verdict = integrity.check(path, SCHEMA["entries"])
        if not verdict.usable:
            raise DamagedRunError(path, verdict.reason() or f"status '{verdict.state}'")
    attrs, state, config, summary, prompt_img, widths, _ = _read(path)
    arch = attrs.get("arch") or config.get("model", {}).get("arch")
    if not arch:
        raise ValueError(f"{path}: no 'arch' attribute or model.arch in /config")
    fam = _family(arch)
    if fam not in HEADS:
        raise ValueError(f"{path}: unknown architecture '{arch}'")
    head = next((k for k in HEADS[fam] if k in state), None)
    first = FIRST_CONV[fam]
    if head is None or first not in state:
        raise ValueError(f"{path}: /weights lacks {first} or the {arch} classifier: not a {arch} state_dict")
    num_classes = int(state[head].shape[0])
    in_channels = int(state[first].shape[1])
    stem_cfg = config.get("model", {}).get("stem", "auto")
    size = input_size or int(config.get("data", {}).get("input_size", 0) or 0) or \
        (int(prompt_img.shape[-1]) if prompt_img is not None else 0)
    target = int(summary["macs"]) if "macs" in summary else None

    stems = _candidate_stems(arch, state, stem_cfg)
    found = []
    for stem in stems:
        shell = _shell(arch, num_classes, in_channels, stem, state)
        count = models.mac_counter(shell, in_channels)
        if size:
            if stem_cfg == "auto" and models.resolve_stem("auto", size) != stem:
                continue
            if target is None or count(size) == target:
                found.append((stem, size, shell, count(size)))
        elif target is not None:
            lo, hi = (1, 1024)
            if stem_cfg == "auto":
                lo, hi = (1, 63) if stem == "cifar" else (64, 1024)
            s = _find_size(count, target, max(lo, 8), hi)
            if s is not None:
                found.append((stem, s, shell, target))
    if not found:
        if not size and target is None:
            raise ValueError(f"{path}: the input size is unknown; pass input_size")
        raise ValueError(f"{path}: no {arch} with stem {'/'.join(stems)} at "
                         f"{size or 'any input size'} has the file's /summary macs = {target} "
                         f"(the PyTorch definition no longer matches passlab's)")
    if len(found) > 1:
        raise ValueError(f"{path}: ambiguous stem ({', '.join(f[0] for f in found)}); pass input_size")
    stem, size, shell, macs = found[0]

    model = shell.to_empty(device=device)
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
    model.load_state_dict(sd, strict=True)
    model.eval()

    keep_prompt = bool(config.get("finetune", {}).get("keep_prompt", False)) and prompt_img is not None
    if with_prompt:
        if prompt_img is None:
            raise ValueError(f"{path}: no /prompt/image (not a PASS run with a prompt)")
        if mean is None or std is None:
            mean, std = store_normalisation(config, path)
        model = Prompted(VisualPrompt(prompt_img, mean, std), model).to(device).eval()
    if not return_info:
        return model
    kind = attrs.get("kind", "weights")
    info = PrunedInfo(path, arch, stem, in_channels, size, num_classes, macs,
                      int(summary["dense_macs"]) if "dense_macs" in summary else None, kind, attrs, widths, keep_prompt)
    return model, info


def store_normalisation(config, path=None):
    """(mean, std) per channel of the store a run used, read from the store file named in
    /config (data.store, or <data.root>/<dataset>.h5, relative to the current directory)."""
    d = config.get("data", {})
    store = d.get("store") or str(Path(d.get("root", "data")) / f"{d.get('dataset', '')}.h5")
    p = Path(store)
    if not p.exists():
        raise ValueError(f"{path}: the prompt needs the store's mean/std and {store} is not reachable; pass mean= and std=")
    with h5py.File(p, "r") as f:
        return np.asarray(f.attrs["mean"], dtype=np.float64), np.asarray(f.attrs["std"], dtype=np.float64)


def check_logits(path, model=None) -> float:
    """max |torch - passlab| / max |passlab| for /input and /logits stored in ``path`` next to
    the compact weights (written by tests/analysis/test_load_pruned.cpp)."""
    *_, extra = _read(path)
    if "input" not in extra or "logits" not in extra:
        raise ValueError(f"{path}: no /input and /logits to compare with")
    model = model if model is not None else load_pruned(path)
    with torch.no_grad():
        got = model(torch.from_numpy(extra["input"])).numpy()
    want = extra["logits"]
    if got.shape != want.shape:
        raise ValueError(f"{path}: logits of shape {got.shape}, passlab's are {want.shape}")
    return float(np.abs(got - want).max() / np.abs(want).max())


def fold_batchnorm(model: nn.Module, channels_last: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm folded into the conv before it
    (W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta): the same
    transformation as passlab's models/fold.hpp. ``model`` itself is not changed."""
    from torch.fx.experimental.optimization import fuse

    folded = fuse(model.eval(), inplace=False)
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules()):
        raise ValueError("fold_batchnorm: a BatchNorm does not follow a conv and was left unfolded")
    _residual_adds_in_place(folded)
    folded.eval()
    return folded.to(memory_format=torch.channels_last) if channels_last else folded


def _residual_adds_in_place(gm) -> int:
    """Makes every residual addition of the traced module ``gm`` sum into its fresh convolution
    output in place, as torchvision's eager ``out += identity`` and passlab's models/fold.cpp do.

    torch.fx traces ``out += identity`` as an out-of-place ``add`` (a Proxy has no ``__iadd__``),
    so the traced module writes every residual sum into a new activation-sized buffer: on
    ResNet-50 at 224 px that alone made PyTorch's compact network 11 % slower than passlab's
    (bench/prune_speedup_ref.py). An operand is summed into only when it is a conv's output that
    nothing else reads, so the rewrite never changes a value another node sees. Returns how many
    additions it rewrote."""
    import operator

    def fresh(node) -> bool:
        return (isinstance(node, torch.fx.Node) and node.op == "call_module" and len(node.users) == 1
                and isinstance(gm.get_submodule(node.target), nn.Conv2d))

    rewritten = 0
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target not in (operator.add, torch.add) or len(node.args) != 2 or node.kwargs:
            continue
        a, b = node.args
        if not (isinstance(a, torch.fx.Node) and isinstance(b, torch.fx.Node)):
            continue
        if not fresh(a) and fresh(b):
            a, b = b, a  # addition commutes: sum into the operand that is free to overwrite
        if fresh(a):
            node.target, node.args = operator.iadd, (a, b)
            rewritten += 1
    gm.recompile()
    return rewritten


def save_torchscript(model: nn.Module, path, example: torch.Tensor) -> Path:
    """Writes ``model`` (eval mode) as a TorchScript file, traced on ``example`` (the networks
    have no data-dependent control flow), and returns the path."""
    path = Path(path)
    with torch.no_grad():
        scripted = torch.jit.trace(model.eval(), example)
    scripted.save(str(path))
    return path
