"""CLIP's ViT image tower in plain torch, numpy and PIL: open_clip's ``visual`` weights without open_clip.

Why: a worker that imports open_clip also imports timm, torchvision, sympy, huggingface_hub and
more; measured (BENCHMARKS.md, issue 15) that is ~260 MB resident on top of torch's ~520 MB before
any weight is read. The embedder only ever runs the image tower, which is a few dozen lines.

What it reproduces, read from open_clip 3.x (``transformer.VisionTransformer`` and
``model._build_vision_tower``) for the standard ViT configs (ViT-B-32, ViT-B-16, ViT-L-14 and their
``-quickgelu`` twins):

- ``conv1``: the patch embedding, a ``patch x patch`` convolution with that stride, no bias;
- ``class_embedding`` prepended to the patch tokens, ``positional_embedding`` added, ``ln_pre``;
- ``transformer.resblocks[i]``: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``, where ``attn`` is
  ``nn.MultiheadAttention`` (batch first, no mask, ``in_proj_weight`` and ``out_proj``) with
  ``width // head_width`` heads, and ``mlp`` is ``c_fc``, ``gelu``, ``c_proj`` at ``mlp_ratio``;
  ``gelu`` is QuickGELU (``x * sigmoid(1.702 x)``) where the model config or the pretrained tag
  says so (OpenAI's weights), else ``nn.GELU``; no layer scale;
- ``ln_post`` on every token, the class token pooled ("tok"), times ``proj``.

The state dict's names are open_clip's ``visual.*`` names, so its weights load unchanged.
Configs with anything else (timm or ResNet towers, attentional pooling, average pooling, layer
scale, custom blocks, sin-cos position embeddings, ...) are "unsupported": ``vit_config`` answers
None and the embedder runs open_clip itself.

Preprocessing is open_clip's evaluation transform for ``resize_mode`` "shortest" or "squash":
torchvision's ``Resize`` on a PIL image (the shortest side to ``image_size``, the other side
``int(size * long / short)``, PIL's bicubic or bilinear resampling), ``CenterCrop`` (offsets
``int(round((side - size) / 2))``), ``ToTensor`` and ``Normalize`` with the tag's mean and std
(OpenAI's by default).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# open_clip's CLIPVisionCfg fields this module builds, and the value every other field must have.
_VISION_FIELDS = {"layers", "width", "head_width", "mlp_ratio", "patch_size", "image_size", "patch_dropout"}
_VISION_DEFAULTS: dict[str, Any] = {
    "ls_init_value": None, "attentional_pool": False, "no_ln_pre": False, "pos_embed_type": "learnable",
    "final_ln_after_pool": False, "pool_type": "tok", "output_tokens": False, "act_kwargs": None,
    "norm_kwargs": None, "block_type": None, "qk_norm": False, "scaled_cosine_attn": False,
    "scale_heads": False, "scale_attn_inner": False, "scale_attn": False, "scale_fc": False,
    "timm_model_name": None, "attn_pooler_queries": 256, "attn_pooler_heads": 8,
}
# Top-level model-config keys that do not change the image tower (the text tower's, the logit scale's).
_OTHER_TOP_LEVEL = {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg", "custom_text", "init_logit_scale",
                    "init_logit_bias", "preprocess_cfg"}
_RESIZE_MODES = ("shortest", "squash")
_INTERPOLATIONS = ("bicubic", "bilinear")


@dataclass(frozen=True)
class TowerConfig:
    """Everything that defines the image tower and its preprocessing (stored with a converted tower)."""

    image_size: int
    patch_size: int
    width: int
    layers: int
    heads: int
    mlp_width: int
    output_dim: int
    quick_gelu: bool = False
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TowerConfig:
        values = dict(data)
        values["mean"] = tuple(float(v) for v in values["mean"])
        values["std"] = tuple(float(v) for v in values["std"])
        config = cls(**values)
        config.check()
        return config

    def check(self) -> None:
        if self.resize_mode not in _RESIZE_MODES or self.interpolation not in _INTERPOLATIONS:
            raise ValueError(f"unsupported preprocessing {self.resize_mode}/{self.interpolation}")
        if self.image_size % self.patch_size or self.width % self.heads:
            raise ValueError("image size must be a multiple of the patch size, width of the heads")

    def with_pretrained(self, *, quick_gelu: bool, mean: Any, std: Any, interpolation: Any,
                        resize_mode: Any) -> TowerConfig:
        """This config with a pretrained tag's settings, as open_clip applies them."""
        values = self.to_json()
        values["quick_gelu"] = bool(self.quick_gelu or quick_gelu)
        values.update({k: v for k, v in {"mean": mean, "std": std, "interpolation": interpolation,
                                         "resize_mode": resize_mode}.items() if v})
        return TowerConfig.from_json(values)


# --- configs ------------------------------------------------------------------------------------

def model_config(model_name: str) -> dict[str, Any] | None:
    """open_clip's model config of ``model_name`` (its JSON file), read without importing open_clip.

    Where open_clip is already imported (a test that registered a config of its own, a process
    that also runs the text tower), its registry answers instead, at no import cost."""
    loaded = sys.modules.get("open_clip")
    if loaded is not None:
        try:
            found = loaded.get_model_config(model_name)
        except Exception:  # an "hf-hub:" name offline, a malformed local dir: not a config we build
            return None
        return dict(found) if found else None
    spec = importlib.util.find_spec("open_clip")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if "/" in model_name or ":" in model_name or not locations:
        return None
    for location in locations:
        path = Path(location) / "model_configs" / f"{model_name}.json"
        if path.is_file():
            config = json.loads(path.read_text(encoding="utf-8"))
            if all(key in config for key in ("embed_dim", "vision_cfg", "text_cfg")):
                return dict(config)
    return None


def vit_config(config: dict[str, Any] | None) -> TowerConfig | None:
    """The TowerConfig of a plain-ViT open_clip model config; None where this module cannot build it."""
    if not config or set(config) - _OTHER_TOP_LEVEL:
        return None
    vision = dict(config.get("vision_cfg") or {})
    for key, default in _VISION_DEFAULTS.items():
        if vision.pop(key, default) != default:
            return None
    if set(vision) - _VISION_FIELDS:
        return None
    layers = vision.get("layers", 12)
    image_size = vision.get("image_size", 224)
    patch_size = vision.get("patch_size", 16)
    if isinstance(image_size, (list, tuple)):
        if len(set(image_size)) != 1:
            return None
        image_size = image_size[0]
    if isinstance(patch_size, (list, tuple)):
        if len(set(patch_size)) != 1:
            return None
        patch_size = patch_size[0]
    if not isinstance(layers, int):  # a tuple of stages: the ModifiedResNet
        return None
    width = int(vision.get("width", 768))
    head_width = int(vision.get("head_width", 64))
    preprocess = dict(config.get("preprocess_cfg") or {})
    try:
        tower = TowerConfig(
            image_size=int(image_size), patch_size=int(patch_size), width=width, layers=layers,
            heads=width // head_width, mlp_width=int(width * float(vision.get("mlp_ratio", 4.0))),
            output_dim=int(config["embed_dim"]), quick_gelu=bool(config.get("quick_gelu", False)),
            mean=_triple(preprocess.get("mean", OPENAI_MEAN)), std=_triple(preprocess.get("std", OPENAI_STD)),
            interpolation=str(preprocess.get("interpolation") or "bicubic"),
            resize_mode=str(preprocess.get("resize_mode") or "shortest"),
        )
        if set(preprocess) - {"mean", "std", "interpolation", "resize_mode", "size", "mode", "fill_color"}:
            return None
        if preprocess.get("mode", "RGB") != "RGB" or preprocess.get("size", tower.image_size) not in (
                tower.image_size, [tower.image_size] * 2, (tower.image_size,) * 2):
            return None
        tower.check()
    except (ValueError, TypeError, KeyError):
        return None
    return tower


def _triple(value: Any) -> tuple[float, float, float]:
    values = tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else (value,) * 3))
    if len(values) != 3:
        raise ValueError("mean and std need three channels")
    return values  # type: ignore[return-value]


# --- the network --------------------------------------------------------------------------------

def build_tower(config: TowerConfig, *, device: Any = None) -> Any:
    """A ClipImageTower for ``config`` (eval mode), randomly initialised like open_clip's (on the
    "meta" device: empty, for ``load_state_dict(..., assign=True)``)."""
    import torch

    classes = _module_classes()
    with torch.device(device or "cpu"):
        tower = classes["ClipImageTower"](config)
    return tower.eval()


def load_tower(config: TowerConfig, state_dict: dict[str, Any]) -> Any:
    """A ClipImageTower holding ``state_dict`` (open_clip's ``visual.*`` names, or without the prefix)
    as is, with no second copy; raises ValueError naming the first missing or unexpected key."""
    tower = build_tower(config, device="meta")
    state = {key if key.startswith("visual.") else f"visual.{key}": value for key, value in state_dict.items()}
    expected = tower.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        what, keys = ("missing", missing) if missing else ("unexpected", unexpected)
        raise ValueError(f"{what} keys {', '.join(keys[:3])}")
    wrong = [key for key, value in expected.items() if tuple(state[key].shape) != tuple(value.shape)]
    if wrong:
        raise ValueError(f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, not {tuple(expected[wrong[0]].shape)}")
    tower.load_state_dict(state, strict=True, assign=True)
    return tower.eval()


def visual_keys(config: TowerConfig) -> dict[str, tuple[int, ...]]:
    """The tower's state-dict names (``visual.*``) and shapes."""
    return {key: tuple(value.shape) for key, value in build_tower(config, device="meta").state_dict().items()}


def _module_classes() -> dict[str, Any]:
    """The torch modules, defined on first use so that importing this file imports no torch."""
    cached = globals().get("_CLASSES")
    if cached is not None:
        return cached
    import torch
    from torch import nn

    class QuickGELU(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * torch.sigmoid(1.702 * x)

    class ResidualAttentionBlock(nn.Module):
        def __init__(self, config: TowerConfig) -> None:
            super().__init__()
            self.ln_1 = nn.LayerNorm(config.width)
            self.attn = nn.MultiheadAttention(config.width, config.heads, batch_first=True)
            self.ln_2 = nn.LayerNorm(config.width)
            self.mlp = nn.Sequential(OrderedDict([
                ("c_fc", nn.Linear(config.width, config.mlp_width)),
                ("gelu", QuickGELU() if config.quick_gelu else nn.GELU()),
                ("c_proj", nn.Linear(config.mlp_width, config.width)),
            ]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.ln_1(x)
            x = x + self.attn(y, y, y, need_weights=False)[0]
            return x + self.mlp(self.ln_2(x))

    class Transformer(nn.Module):
        def __init__(self, config: TowerConfig) -> None:
            super().__init__()
            self.resblocks = nn.ModuleList([ResidualAttentionBlock(config) for _ in range(config.layers)])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for block in self.resblocks:
                x = block(x)
            return x

    class VisionTransformer(nn.Module):
        def __init__(self, config: TowerConfig) -> None:
            super().__init__()
            width, grid = config.width, config.image_size // config.patch_size
            scale = width ** -0.5
            self.conv1 = nn.Conv2d(3, width, kernel_size=config.patch_size, stride=config.patch_size, bias=False)
            self.class_embedding = nn.Parameter(torch.empty(width))
            self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, width))
            self.ln_pre = nn.LayerNorm(width)
            self.transformer = Transformer(config)
            self.ln_post = nn.LayerNorm(width)
            self.proj = nn.Parameter(torch.empty(width, config.output_dim))
            if not self.proj.is_meta:  # random like open_clip's (randn on "meta" would import sympy: 80 MB)
                for parameter in (self.class_embedding, self.positional_embedding, self.proj):
                    nn.init.normal_(parameter, std=scale)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.conv1(x)
            x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # (n, grid ** 2, width)
            token = self.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype)
            x = torch.cat([token, x], dim=1) + self.positional_embedding.to(x.dtype)
            x = self.transformer(self.ln_pre(x))
            return self.ln_post(x)[:, 0] @ self.proj

    class ClipImageTower(nn.Module):
        """``visual`` (open_clip's names) and CLIP's ``encode_image`` (not normalised)."""

        def __init__(self, config: TowerConfig) -> None:
            super().__init__()
            self.config = config
            self.visual = VisionTransformer(config)

        def encode_image(self, image: torch.Tensor) -> torch.Tensor:
            return self.visual(image)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.visual(image)

    classes = {"ClipImageTower": ClipImageTower, "QuickGELU": QuickGELU}
    globals()["_CLASSES"] = classes
    return classes


# --- preprocessing ------------------------------------------------------------------------------

def normalisation(config: TowerConfig) -> tuple[np.ndarray, np.ndarray]:
    """(255 * mean, 1 / (255 * std)): ``(pixels - a) * b`` is ToTensor then Normalize."""
    mean = np.asarray(config.mean, dtype=np.float32) * 255.0
    std = np.asarray(config.std, dtype=np.float32) * 255.0
    return mean, (1.0 / std).astype(np.float32)


def resize_and_crop(image: Any, config: TowerConfig) -> Any:
    """open_clip's evaluation Resize and CenterCrop of a PIL image (see the module docstring)."""
    from PIL import Image

    resample = Image.Resampling.BICUBIC if config.interpolation == "bicubic" else Image.Resampling.BILINEAR
    size = config.image_size
    image = image.convert("RGB")
    if config.resize_mode == "squash":
        return image if image.size == (size, size) else image.resize((size, size), resample)
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), resample)
    top, left = round((new_h - size) / 2.0), round((new_w - size) / 2.0)  # torchvision's offsets
    return image.crop((left, top, left + size, top + size))


def preprocess(image: Any, config: TowerConfig) -> np.ndarray:
    """A PIL image as the model's (3, size, size) float32 input."""
    mean, scale = normalisation(config)
    pixels = np.asarray(resize_and_crop(image, config), dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) * scale).transpose(2, 0, 1))

