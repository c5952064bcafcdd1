"""The standalone CLIP image tower (no open_clip at run time) against open_clip's own model.

Random weights saved by the tests themselves (nothing can be downloaded here): the same checkpoint
through both paths must give the same embeddings (cosine >= 0.9999 in float32), preprocessing of
PIL images of other sizes included; a pretrained tag's tower is converted once in a child process,
cached with its sha256, and a damaged cache is converted again or refused.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from recognition import ClipEmbedder, ModelUnavailableError, clip_convert, clip_tower
from recognition.weights import sha256_of
from tests.recognition.conftest import write_openai_hub_cache

pytestmark = pytest.mark.slow  # model loads, and child processes that import open_clip

REPO = Path(__file__).resolve().parents[2]
MIN_COSINE = 0.9999


def images(size: int = 224) -> list[np.ndarray]:
    """Smooth colour images: at the model's size (the numpy fast path) and three others (PIL's)."""
    import cv2

    rng = np.random.default_rng(7)
    shapes = [(size, size), (size, size), (300, 260), (180, 320), (97, 151)]
    return [cv2.resize(rng.integers(0, 256, (9, 9, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
            for h, w in shapes]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1)  # both unit length


@pytest.fixture(scope="module")
def whole_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A whole open_clip ViT-B-32 (both towers), random weights, as open_clip saves one."""
    import open_clip
    import torch

    torch.manual_seed(11)
    path = tmp_path_factory.mktemp("clip") / "whole.pt"
    torch.save(open_clip.create_model("ViT-B-32", pretrained=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def reference(whole_checkpoint: Path) -> ClipEmbedder:
    embedder = ClipEmbedder("ViT-B-32", checkpoint=whole_checkpoint, precision="fp32", standalone=False)
    embedder.load()
    assert embedder.engine == "open_clip"
    return embedder


def test_the_standard_vit_configs_are_read_from_open_clips_json_and_the_others_are_left_to_it():
    b32 = clip_tower.vit_config(clip_tower.model_config("ViT-B-32"))
    assert b32 is not None
    shape = (b32.image_size, b32.patch_size, b32.width, b32.layers, b32.heads, b32.output_dim)
    assert shape == (224, 32, 768, 12, 12, 512)
    assert not b32.quick_gelu and b32.mean == clip_tower.OPENAI_MEAN and b32.resize_mode == "shortest"
    l14 = clip_tower.vit_config(clip_tower.model_config("ViT-L-14-quickgelu"))
    assert l14 is not None and l14.quick_gelu
    assert (l14.patch_size, l14.width, l14.layers, l14.heads, l14.output_dim) == (14, 1024, 24, 16, 768)
    assert clip_tower.vit_config(clip_tower.model_config("ViT-B-16")) is not None
    for other in ("RN50", "coca_ViT-B-32", "ViT-B-16-SigLIP", "convnext_base", "ViT-Nope"):
        assert clip_tower.vit_config(clip_tower.model_config(other)) is None, other


def test_the_standalone_tower_gives_open_clips_embeddings_for_the_same_checkpoint(
    reference: ClipEmbedder, whole_checkpoint: Path
):
    standalone = ClipEmbedder("ViT-B-32", checkpoint=whole_checkpoint, precision="fp32")
    crops = images()
    vectors = standalone.encode(crops)
    assert standalone.engine == "standalone"
    assert cosines(vectors, reference.encode(crops)).min() >= MIN_COSINE
    # The same names as open_clip's tower: its state dict saves and loads back both ways.
    assert standalone.model.state_dict().keys() == reference.model.state_dict().keys()


def test_preprocessing_of_pil_images_is_open_clips():
    import open_clip
    from PIL import Image

    _, _, transform = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    config = clip_tower.vit_config(clip_tower.model_config("ViT-B-32"))
    assert config is not None
    for array in images():
        image = Image.fromarray(array)
        expected = transform(image).numpy()
        np.testing.assert_allclose(clip_tower.preprocess(image, config), expected, rtol=0, atol=1e-5)


def test_quick_gelu_and_other_shapes_match_open_clip_on_a_tiny_vit(tmp_path: Path):
    import open_clip
    import torch
    from PIL import Image

    vision = {"image_size": 64, "layers": 2, "width": 48, "head_width": 16, "patch_size": 16, "mlp_ratio": 2.5}
    config = {"embed_dim": 24, "quick_gelu": True, "vision_cfg": vision,
              "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1}}
    (tmp_path / "RollcallTinyTower.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "RollcallTinyTower.json")
    torch.manual_seed(3)
    model, _, transform = open_clip.create_model_and_transforms("RollcallTinyTower", pretrained=None)
    tower_config = clip_tower.vit_config(clip_tower.model_config("RollcallTinyTower"))
    assert tower_config is not None and tower_config.quick_gelu and tower_config.mlp_width == 120
    tower = clip_tower.load_tower(tower_config, model.visual.state_dict())
    batch = torch.stack([transform(Image.fromarray(a)) for a in images(64)])
    with torch.inference_mode():
        expected, got = model.eval().encode_image(batch), tower.encode_image(batch)
    assert float(torch.nn.functional.cosine_similarity(expected, got).min()) >= MIN_COSINE
    # The converter's own check: a tower that disagrees with open_clip's is not cached.
    state = model.visual.state_dict()
    wrong = clip_tower.load_tower(tower_config, {**state, "proj": torch.randn_like(state["proj"])})
    with pytest.raises(clip_convert.UnsupportedTower, match="cosine"):
        clip_convert.verify(model.eval(), transform, wrong, tower_config)
    assert clip_convert.tower_config_of(model.visual, transform) == tower_config


def test_a_checkpoint_missing_a_tower_weight_is_refused_by_name(whole_checkpoint: Path, tmp_path: Path):
    import torch

    partial = {k: v for k, v in torch.load(whole_checkpoint, weights_only=True).items() if k != "visual.proj"}
    torch.save(partial, tmp_path / "partial.pt")
    # Not the tower's exact layout: open_clip reads it (in a child process) and names the gap.
    with pytest.raises(ModelUnavailableError, match=r"missing keys visual\.proj"):
        ClipEmbedder("ViT-B-32", checkpoint=tmp_path / "partial.pt").load()


@pytest.fixture(scope="module")
def hub_cache(reference: ClipEmbedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Hugging Face cache holding the "openai" tag's file (the reference's random weights)."""
    return write_openai_hub_cache(tmp_path_factory.mktemp("hub"), reference.model.state_dict())


def test_a_pretrained_tag_is_converted_once_cached_with_its_checksum_and_reconverted_when_damaged(
    hub_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    crops = images()
    expected = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=hub_cache, precision="fp32",
                            standalone=False).encode(crops)
    models = tmp_path / "models"
    first = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=hub_cache, precision="fp32", tower_dir=models)
    vectors = first.encode(crops)
    # The tag's QuickGELU travelled with the tower: the same vectors as open_clip's.
    assert first.engine == "standalone" and cosines(vectors, expected).min() >= MIN_COSINE
    weights, meta_path = clip_convert.cache_paths(models, "ViT-B-32", "openai")
    meta = json.loads(meta_path.read_text())
    assert meta["sha256"] == sha256_of(weights) and meta["config"]["quick_gelu"] is True
    # No leftovers: the tower, its meta, and the lock that lets one process at a time convert it.
    assert sorted(p.name for p in models.iterdir()) == sorted([weights.name, meta_path.name, f"{weights.stem}.lock"])

    calls: list[str] = []
    real = clip_convert.convert_in_child

    def counted(**options):
        calls.append(options["model_name"])
        return real(**options)

    monkeypatch.setattr(clip_convert, "convert_in_child", counted)
    again = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=hub_cache, precision="fp32", tower_dir=models)
    np.testing.assert_allclose(again.encode(crops), vectors, rtol=0, atol=1e-6)
    assert calls == []  # read from the cache, open_clip not run

    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside a weight
    weights.write_bytes(bytes(data))
    repaired = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=hub_cache, precision="fp32", tower_dir=models)
    with caplog.at_level("WARNING", logger="recognition.clip_convert"):
        np.testing.assert_allclose(repaired.encode(crops), vectors, rtol=0, atol=1e-6)
    assert calls == ["ViT-B-32"] and "does not match its checksum" in caplog.text
    assert json.loads(meta_path.read_text())["sha256"] == sha256_of(weights)

    # A tower that still does not read back after converting again is refused, not run.
    monkeypatch.setattr(clip_convert, "read_tower", lambda *args, **kwargs: None)
    with pytest.raises(ModelUnavailableError, match="does not read back intact"):
        ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=hub_cache, tower_dir=models).load()


def test_offline_without_weights_or_a_cached_tower_fails_naming_the_offline_switch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = tmp_path / "models"
    embedder = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=tmp_path / "hub", tower_dir=models)
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE") as caught:
        embedder.load()
    assert "ROLLCALL_CLIP_CHECKPOINT" in str(caught.value)
    assert [p.suffix for p in models.iterdir()] == [".lock"]  # the temporary conversion folder is gone


def test_a_process_that_embeds_through_the_standalone_tower_never_imports_open_clip(
    whole_checkpoint: Path, hub_cache: Path, tmp_path: Path
):
    models = tmp_path / "models"
    ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir=hub_cache, tower_dir=models).load()  # converts
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        from recognition import ClipEmbedder
        from recognition.choice import choose_backbone
        # "auto" finds the converted tower (the hub cache may be gone) without open_clip's registry.
        choice = choose_backbone("auto", model_name="ViT-B-32", pretrained="openai", checkpoint=None,
                                 cache_dir={str(tmp_path / "empty")!r}, tower_dir={str(models)!r}).name
        crops = [np.full((224, 224, 3), 90, np.uint8), np.full((150, 200, 3), 160, np.uint8)]
        tagged = ClipEmbedder("ViT-B-32", pretrained="openai", cache_dir={str(hub_cache)!r},
                              tower_dir={str(models)!r})
        checkpoint = ClipEmbedder("ViT-B-32", checkpoint={str(whole_checkpoint)!r})
        shapes = [list(e.encode(crops).shape) for e in (tagged, checkpoint)]
        heavy = [m for m in ("open_clip", "timm", "torchvision", "huggingface_hub") if m in sys.modules]
        print(json.dumps({{"choice": choice, "engines": [tagged.engine, checkpoint.engine], "shapes": shapes,
                          "heavy": heavy}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={**_env(), "HF_HUB_OFFLINE": "1"}, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {"choice": "clip", "engines": ["standalone", "standalone"], "shapes": [[2, 512], [2, 512]],
                      "heavy": []}


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(REPO)}
