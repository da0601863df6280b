"""The options object: one frozen class per explanation type, attributes and a read-only mapping."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from ground_truth.cache import ReferenceKey
from harness_plugins.errors import IntrospectError
from harness_plugins.options import COMMON_OPTIONS, Option, resolve_options
from harness_plugins.registry import get_registry
from harness_plugins.task_options import TaskOptions, options_class

DECLARED = [
    *COMMON_OPTIONS,
    Option("flag", True, "a switch", kind=bool),
    Option("ratio", 0.5, "a share", kind=float, minimum=0, maximum=1),
    Option("count", 3, "how many", kind=int),
    Option("ids", None, "listed ids", kind=list),
]


def resolve(metadata=None, task="introspect_demo"):
    return resolve_options(task, DECLARED, metadata or {})


def test_every_declared_option_is_an_attribute_with_its_parsed_type():
    options = resolve({"flag": "false", "ratio": "0.25", "count": "7", "ids": "[1, 2]"})
    assert isinstance(options, TaskOptions) and type(options).__name__ == "DemoOptions"
    assert options.flag is False and options.ratio == 0.25 and options.count == 7
    assert options.ids == [1, 2] and options.seed == 0 and options.partition == "test"
    assert isinstance(options.test_fraction, float) and isinstance(options.max_docs, int)
    assert [f.name for f in dataclasses.fields(options)] == [o.name for o in DECLARED]
    assert {f.name: f.type for f in dataclasses.fields(options)}["count"] in (int, "int")


def test_the_mapping_reads_of_earlier_versions_still_work():
    options = resolve({"count": 4})
    assert options["count"] == 4 and options.get("count") == 4 and options.get("nope") is None
    assert "flag" in options and "nope" not in options and len(options) == len(DECLARED)
    assert list(options) == list(options.keys()) == [o.name for o in DECLARED]
    plain = {o.name: options[o.name] for o in DECLARED}
    assert dict(options) == {**options} == options.as_dict() == plain
    assert options == plain and dict(options.items()) == plain
    with pytest.raises(KeyError):
        options["nope"]


def test_it_is_immutable_and_changed_copies_are_new_objects():
    options = resolve()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.count = 9
    with pytest.raises(TypeError):
        options["count"] = 9  # no __setitem__: a read-only mapping
    changed = options.replace(count=9, partition="train")
    assert (changed.count, changed.partition) == (9, "train") and options.count == 3
    assert type(changed) is type(options)
    with pytest.raises(IntrospectError, match=r"unknown option 'cout'.*count"):
        options.replace(cout=9)


def test_an_unknown_attribute_names_the_type_and_its_options():
    options = resolve()
    with pytest.raises(
        AttributeError, match=r"demo has no option 'cuont'; options: .*count.*ratio"
    ):
        options.cuont  # noqa: B018
    assert getattr(options, "cuont", "default") == "default"


def test_each_type_gets_its_own_class_and_the_class_is_cached():
    registry = get_registry()
    features = registry.explanation_type("features")
    patching = registry.explanation_type("activation_patching")
    a = resolve_options("introspect_features", features.all_options(), {})
    b = resolve_options("introspect_activation_patching", patching.all_options(), {})
    assert type(a) is not type(b)
    assert type(a).__name__ == "FeaturesOptions" and a.type_name == "features"
    assert type(a) is options_class("features", features.all_options())
    assert isinstance(a.layer, int) and isinstance(b.first_layer, int) and b.no_internals is False
    with pytest.raises(AttributeError, match="activation_patching has no option 'layer'"):
        b.layer  # noqa: B018


def test_an_option_named_like_a_method_is_refused():
    with pytest.raises(IntrospectError, match="option 'items' cannot be an attribute"):
        resolve_options("introspect_bad", [Option("items", 1, "clashes", kind=int)], {})


def test_pickle_copy_and_datasets_fingerprint_see_the_same_options():
    from datasets.fingerprint import Hasher

    options = resolve({"ids": [3]})
    for clone in (pickle.loads(pickle.dumps(options)), copy.deepcopy(options), copy.copy(options)):
        assert type(clone) is type(options) and clone == options
    assert Hasher.hash(options) == Hasher.hash(resolve({"ids": [3]}))
    assert Hasher.hash(options) != Hasher.hash(resolve({"ids": [4]}))


def test_cache_keys_are_those_of_the_plain_dict(tiny_llama):
    from harness_plugins.references import ReferencePipeline

    options = resolve({"count": 5})
    plain = options.as_dict()
    assert (
        ReferenceKey.make("demo", "1", options, "fp", 0).digest()
        == ReferenceKey.make("demo", "1", plain, "fp", 0).digest()
    )
    pipeline = ReferencePipeline("features", {"pretrained": str(tiny_llama)}, model_arguments=[])
    assert isinstance(pipeline.options, TaskOptions)
    assert pipeline.reference_options() == pipeline.reference_options(pipeline.options.as_dict())
    assert pipeline.record.options == pipeline.options.as_dict()
    assert type(pipeline.record.options) is dict  # the JSON record stays a plain dict
