"""Learned projections: trained with the adapter, saved beside it, read by the introspect model."""

from __future__ import annotations

import shutil

import pytest
import torch

from ground_truth.affine_map import AffineMap
from ground_truth.subject import ModelSpec
from harness_plugins.errors import IntrospectError
from harness_plugins.prompts import vectors
from harness_plugins.prompts.projections import (
    FILE,
    SlotProjections,
    load_projections,
    projection_kind,
)
from harness_plugins.training.explainer import train_explainer
from harness_plugins.training.lora import TrainingConfig, read_manifest


class FakeMapper:
    """A fitted affine map from a 48-wide subject to the 32-wide explainer, at every layer."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.fitted = AffineMap(
            torch.randn(48, 32, generator=generator),
            torch.randn(32, generator=generator),
            1,
            1,
            0.4,
            10,
        )

    def map_for(self, layer: int) -> AffineMap:
        return self.fitted

    def __call__(self, vector, layer, site):
        return self.fitted.apply(vector), None


def _train(tiny_llama, out, learn: bool):
    config = TrainingConfig(max_steps=6, batch_size=4, lora_r=4, learning_rate=1e-2, save_steps=100)
    return train_explainer(
        ModelSpec(str(tiny_llama)),
        ["features"],
        out,
        metadata={"subject": str(tiny_llama)},
        limit=8,
        config=config,
        learn_projection=learn,
    )


@pytest.fixture(scope="module")
def adapters(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("projections")
    _train(tiny_llama, root / "learned", learn=True)
    _train(tiny_llama, root / "fixed", learn=False)
    return root / "learned", root / "fixed"


def _model(tiny_llama, adapter):
    from harness_plugins.lm_eval_adapter.model import IntrospectLM

    return IntrospectLM(pretrained=str(tiny_llama), peft=str(adapter), device="cpu", batch_size=1)


def test_initial_projection_is_the_fixed_path():
    mapper = FakeMapper()
    vector = torch.randn(48)
    cross = SlotProjections.initial([(vector, 3, 0.5, mapper)])
    expected = 0.5 * mapper.fitted.apply(vector)
    assert torch.allclose(cross.project(vector, 3, 0.5), expected, atol=1e-5)
    assert torch.allclose(cross.project(vector, 3, 1.0), 2 * expected, atol=1e-5)  # scale ratio
    assert cross.info["3"]["init"] == "fitted_map" and cross.maps["3"].bias is None
    self_vector = torch.randn(32)
    identity = SlotProjections.initial([(self_vector, 1, 2.0, None)])
    assert torch.allclose(identity.project(self_vector, 1, 2.0), 2.0 * self_vector)
    with pytest.raises(IntrospectError, match="cover subject layers 1, not 0"):
        identity.project(self_vector, 0, 2.0)
    with pytest.raises(IntrospectError, match="width 32, got 48"):
        identity.project(vector, 1, 2.0)


def test_the_projection_is_trained_and_saved(adapters):
    learned, fixed = adapters
    projections = load_projections(learned)
    (name,) = projections.info
    info = projections.info[name]
    assert info["init"] == "identity" and info["subject_width"] == info["explainer_width"] == 32
    start = info["scale"] * torch.eye(32)
    assert not torch.allclose(projections.maps[name].weight, start, atol=1e-4)  # it learned
    assert read_manifest(learned)["projection"]["kind"] == "learned"
    assert read_manifest(fixed)["projection"] == {"kind": "fixed"}
    assert load_projections(fixed) is None and not (fixed / FILE).exists()
    assert (projection_kind(learned), projection_kind(fixed)) == ("learned", "fixed")


def test_self_slot_holds_the_learned_projection(tiny_llama, adapters, table):
    learned, _ = adapters
    model = _model(tiny_llama, learned)
    projections = load_projections(learned)
    (name,) = projections.info
    vector, scale = torch.randn(32), projections.info[name]["scale"]
    text = "Describe " + vectors.slot(vector, scale, layer=int(name)) + " briefly"
    _, writes = model._encode_marked(text, 0)
    written = writes[0].vector
    weight = projections.maps[name].weight.detach()
    assert torch.allclose(written, weight @ vector, atol=1e-5)
    assert not torch.allclose(written, scale * vector, atol=1e-4)  # not the fixed path
    assert model.projections.used["learned"] == 1


def test_cross_slot_holds_the_learned_projection(tiny_llama, adapters, tmp_path):
    learned, _ = adapters
    adapter = tmp_path / "cross"
    shutil.copytree(learned, adapter)
    mapper = FakeMapper()
    projections = SlotProjections.initial([(torch.randn(48), 1, 0.5, mapper)])
    with torch.no_grad():
        projections.maps["1"].weight.add_(0.1)  # as if trained
    projections.save(adapter, subject="other")
    model = _model(tiny_llama, adapter)
    table = vectors.VectorTable(mapper=mapper)
    with table.active():
        vector = torch.randn(48)
        text = "Describe " + vectors.slot(vector, 0.5, layer=1) + " briefly"
        key = text.split("<rep:")[1][:16]
        _, writes = model._encode_marked(text, 0)
    expected = projections.maps["1"].weight.detach() @ vector + 0.5 * mapper.fitted.bias
    assert torch.allclose(writes[0].vector, expected, atol=1e-4)
    assert torch.allclose(vectors.vector(key), 0.5 * mapper.fitted.apply(vector), atol=1e-5)
    assert not torch.allclose(writes[0].vector, vectors.vector(key), atol=1e-3)
    table.clear()


def test_adapter_without_projections_keeps_the_fixed_map(tiny_llama, adapters, table):
    _, fixed = adapters
    model = _model(tiny_llama, fixed)
    assert model.projections is None
    vector = torch.randn(32)
    text = "Describe " + vectors.slot(vector, 0.3, layer=1) + " briefly"
    _, writes = model._encode_marked(text, 0)
    assert torch.allclose(writes[0].vector, 0.3 * vector)


def test_the_results_record_names_the_projection(tiny_llama, adapters):
    from harness_plugins.references import ReferencePipeline

    learned, fixed = adapters
    for adapter, kind in ((learned, "learned"), (fixed, "fixed")):
        arguments = {
            "pretrained": str(tiny_llama),
            "peft": str(adapter),
            "subject": str(tiny_llama),
        }
        record = ReferencePipeline("features", arguments).record.as_dict()
        assert record["vector_projection"] == kind


def test_projections_can_learn_at_their_own_rate():
    """--projection_learning_rate: the projections leave the LoRA groups for their own."""
    from harness_plugins.training.projection_addon import ProjectionTraining

    projections = SlotProjections.initial([(torch.randn(8), 2, 1.0, None)])
    lora = torch.nn.Linear(8, 8)
    model = torch.nn.Module()
    model.add_module("lora", lora)

    class FakeTrainer:
        def __init__(self):
            self.model = model

        def create_optimizer(self):
            return torch.optim.AdamW(
                [{"params": list(self.model.parameters()), "weight_decay": 0.01}], lr=1e-4
            )

    trainer = FakeTrainer()
    ProjectionTraining(projections, learning_rate=5e-2).attach(trainer, None, None)
    optimizer = trainer.create_optimizer()
    own = {id(p) for p in projections.parameters()}
    groups = [(g["lr"], {id(p) for p in g["params"]}) for g in optimizer.param_groups]
    assert groups == [(1e-4, {id(p) for p in lora.parameters()}), (5e-2, own)]

    shared = FakeTrainer()  # without its own rate: one group, the projections in it
    ProjectionTraining(SlotProjections.initial([(torch.randn(8), 2, 1.0, None)])).attach(
        shared, None, None
    )
    (group,) = shared.create_optimizer().param_groups
    assert len(group["params"]) == 3
