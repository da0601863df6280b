"""Task options: typed, validated, told apart from model arguments, with helpful errors."""

from __future__ import annotations

import pytest

from harness_plugins.errors import IntrospectError
from harness_plugins.options import COMMON_OPTIONS, Option, resolve_options

DECLARED = [
    *COMMON_OPTIONS,
    Option("flag", True, "a switch", kind=bool),
    Option("ratio", 0.5, "a share", kind=float, minimum=0, maximum=1),
]


def resolve(metadata, **kwargs):
    return resolve_options("introspect_x", DECLARED, metadata, **kwargs)


def test_defaults_and_overrides_with_conversion():
    values = resolve({"seed": "7", "flag": "false", "ratio": 0.25, "partition": "train"})
    assert values["seed"] == 7 and values["flag"] is False and values["ratio"] == 0.25
    assert values["partition"] == "train" and values["backend"] == "hf"


def test_model_arguments_and_lm_eval_keys_are_not_options():
    values = resolve(
        {
            "pretrained": "x",
            "peft": "y",
            "dtype": "float32",
            "gguf_file": "m.gguf",
            "config_source": "f.yaml",
            "version": 1,
        }
    )
    assert values["subject"] is None


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"seed": "seven"}, "option seed='seven' is not a valid int"),
        ({"flag": "maybe"}, "option flag='maybe' is not a valid bool"),
        ({"partition": "dev"}, "option partition='dev' is not one of 'train', 'test'"),
        ({"ratio": 2}, "option ratio=2 is above the maximum 1"),
        ({"subjet": "gpt2"}, "unknown option 'subjet'; did you mean 'subject'?"),
        ({"max_doc": 3}, "unknown option 'max_doc'; did you mean 'max_docs'?"),
    ],
)
def test_bad_values_and_misspelt_options_are_one_clear_error(metadata, message):
    with pytest.raises(IntrospectError, match="introspect_x: ") as error:
        resolve(metadata)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_unknown_keys_are_errors_when_the_model_arguments_are_known():
    with pytest.raises(IntrospectError, match="unknown option 'attn'"):
        resolve({"attn": "eager"}, known_model_arguments={"pretrained"})
    values = resolve(
        {"attn_implementation": "eager"},
        known_model_arguments={"pretrained", "attn_implementation"},
    )
    assert "attn_implementation" not in values


def test_unknown_keys_only_warn_when_the_model_may_take_them():
    warnings = []
    resolve({"attn_implementation": "eager"}, warn=warnings.append)
    assert warnings == [
        "introspect_x: 'attn_implementation' is not an option of this task; it is ignored here"
    ]
