"""Loading the models whose internals are explained: aliases, local folders, GGUF, PEFT.

A model is named by a `ModelSpec` (what the user wrote) and resolved through the model
aliases that plugins register. Loaded models are shared within a process through
`shared_models`, so that self-explanation under ``--model introspect`` runs the
explainer's weights for the ground truth instead of loading them a second time.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ground_truth.architecture import check_source_architecture
from ground_truth.errors import IntrospectError
from ground_truth.fingerprint_memo import (  # re-exported: the memo used to live here
    adapter_fingerprint as adapter_fingerprint,
)
from ground_truth.fingerprint_memo import files_key as files_key
from ground_truth.fingerprint_memo import known_fingerprint as known_fingerprint
from ground_truth.fingerprint_memo import remember_fingerprint as remember_fingerprint

logger = logging.getLogger("introspect")


@dataclass(frozen=True)
class ModelSource:
    """Where the weights are: a local folder or a Hub id, optionally a GGUF file in it."""

    path: str
    gguf_file: str | None = None


@dataclass(frozen=True)
class ModelAlias:
    """A short model name; ``resolve`` runs only when the alias is used."""

    description: str
    resolve: Callable[[], ModelSource]


@dataclass(frozen=True)
class ModelSpec:
    """A model as the user named it; equal specs mean the same loaded model."""

    pretrained: str
    peft: str | None = None
    revision: str | None = None
    gguf_file: str | None = None
    dtype: str = "auto"
    trust_remote_code: bool = False

    @classmethod
    def from_arguments(cls, arguments: Mapping[str, Any], prefix: str = "") -> ModelSpec:
        """Build from lm-eval style model arguments (``subject_peft`` with prefix ``subject_``)."""

        def get(name: str) -> Any:
            return arguments.get(prefix + name)

        pretrained = arguments.get(prefix.rstrip("_")) if prefix else get("pretrained")
        if not isinstance(pretrained, str) or not pretrained:
            raise IntrospectError(
                "no model named: pass --model_args pretrained=NAME (an alias such as "
                "smollm2-135m-instruct, a local folder, or a Hub id)"
            )
        revision = get("revision")
        dtype = get("dtype")
        return cls(
            pretrained=_normalise_name(pretrained),
            peft=_normalise_name(get("peft")) if get("peft") else None,
            revision=None if revision in (None, "", "main") else str(revision),
            gguf_file=get("gguf_file") or None,
            dtype="auto" if dtype in (None, "") else str(dtype),
            trust_remote_code=str(get("trust_remote_code")).lower() == "true",
        )

    def describe(self) -> str:
        text = self.pretrained
        if self.gguf_file:
            text += f" [{self.gguf_file}]"
        if self.peft:
            text += f" + peft {self.peft}"
        return text


def _normalise_name(name: str) -> str:
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


@dataclass(eq=False)
class LoadedModel:
    """A model ready to run, with its tokenizer and (lazily) its content fingerprint."""

    spec: ModelSpec
    model: Any
    tokenizer: Any
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            from ground_truth.fingerprint import model_fingerprint

            self._fingerprint = model_fingerprint(self.model, self.tokenizer)
        return self._fingerprint

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device


# spec -> a model some part of this process has already loaded (the lm-eval explainer).
shared_models: weakref.WeakValueDictionary[ModelSpec, LoadedModel] = weakref.WeakValueDictionary()


def resolve_source(spec: ModelSpec, aliases: Mapping[str, ModelAlias]) -> ModelSource:
    """Turn an alias, folder or Hub id into a `ModelSource`, or say exactly why it cannot be."""
    if spec.pretrained in aliases:
        source = aliases[spec.pretrained].resolve()
        return ModelSource(source.path, spec.gguf_file or source.gguf_file)
    path = Path(spec.pretrained)
    if path.is_dir():
        if spec.gguf_file and not (path / spec.gguf_file).is_file():
            raise IntrospectError(
                f"GGUF file {spec.gguf_file!r} not found in {path}; pass the file name "
                "inside that folder as gguf_file="
            )
        if not spec.gguf_file and not (path / "config.json").is_file():
            raise IntrospectError(
                f"model folder {path} has no config.json; point pretrained= at a folder "
                "written by save_pretrained, or add gguf_file= for a GGUF model"
            )
        return ModelSource(str(path), spec.gguf_file)
    if (
        path.exists()
        or spec.pretrained.startswith((".", "/", "~"))
        or spec.pretrained.count("/") > 1
    ):
        raise IntrospectError(
            f"model path {spec.pretrained!r} does not exist; pass an existing folder, a Hub "
            f"id, or an alias ({_alias_list(aliases)})"
        )
    if _hub_offline() and not _in_hub_cache(spec.pretrained, spec.revision):
        raise IntrospectError(
            f"unknown model {spec.pretrained!r}: not an alias ({_alias_list(aliases)}), "
            "not a local folder, and not in the Hugging Face cache while HF_HUB_OFFLINE=1; "
            "`introspect models` lists the aliases"
        )
    return ModelSource(spec.pretrained, spec.gguf_file)


def layer_count(spec: ModelSpec, aliases: Mapping[str, ModelAlias]) -> int | None:
    """The subject's number of blocks from its config, without loading weights (None: unknown)."""
    try:
        from transformers import AutoConfig

        source = resolve_source(spec, aliases)
        kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
        config = AutoConfig.from_pretrained(source.path, revision=spec.revision, **kwargs)
    except IntrospectError:
        raise
    except Exception:  # remote or unusual configs: the check runs once the model is loaded
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    count = getattr(text, "num_hidden_layers", None)
    return int(count) if isinstance(count, int) else None


def _alias_list(aliases: Mapping[str, ModelAlias]) -> str:
    return "aliases: " + (", ".join(sorted(aliases)) or "none")


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except Exception:
        return False
    return isinstance(found, str)


def check_peft(spec: ModelSpec) -> None:
    """Fail early, with the fix, when a PEFT adapter folder cannot be what it claims."""
    if not spec.peft:
        return
    path = Path(spec.peft)
    if path.is_dir() and not (path / "adapter_config.json").is_file():
        raise IntrospectError(
            f"PEFT adapter folder {path} has no adapter_config.json; pass the folder that "
            "PeftModel.save_pretrained wrote"
        )
    if not path.exists() and (spec.peft.startswith((".", "/", "~")) or _hub_offline()):
        raise IntrospectError(f"PEFT adapter {spec.peft!r} does not exist")
    if path.is_dir():
        from ground_truth.weights_check import check_adapter_folder

        check_adapter_folder(path)


def load_tokenizer(spec: ModelSpec, aliases: Mapping[str, ModelAlias]) -> Any:
    """The tokenizer alone: cheap, for checks that must run before any weights load."""
    from transformers import AutoTokenizer

    source = resolve_source(spec, aliases)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source.path,
            gguf_file=source.gguf_file,
            revision=spec.revision,
            trust_remote_code=spec.trust_remote_code,
        )
    except (OSError, ValueError) as error:
        raise IntrospectError(f"cannot load the tokenizer of {spec.describe()}: {error}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    spec: ModelSpec, aliases: Mapping[str, ModelAlias], device: str | None = None
) -> LoadedModel:
    """The shared loaded model for ``spec``, loading it (once per process) if needed."""
    shared = shared_models.get(spec)
    if shared is not None:
        return shared
    import torch
    from transformers import AutoModelForCausalLM

    source = resolve_source(spec, aliases)
    check_peft(spec)
    check_source_architecture(
        source.path,
        gguf_file=source.gguf_file,
        revision=spec.revision,
        trust_remote_code=spec.trust_remote_code,
    )
    tokenizer = load_tokenizer(spec, aliases)
    dtype: Any = spec.dtype if spec.dtype == "auto" else getattr(torch, spec.dtype, None)
    if dtype is None:
        raise IntrospectError(
            f"unknown dtype {spec.dtype!r}; use auto, float32, bfloat16 or float16"
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(
            source.path,
            gguf_file=source.gguf_file,
            revision=spec.revision,
            dtype=dtype,
            trust_remote_code=spec.trust_remote_code,
        )
    except (OSError, ValueError) as error:
        raise IntrospectError(f"cannot load model {spec.describe()}: {error}") from None
    if spec.peft:
        from peft import PeftModel

        from ground_truth.weights_check import adapter_fit_error

        try:
            model = PeftModel.from_pretrained(model, spec.peft)
        except (ValueError, RuntimeError, KeyError, TypeError, AttributeError) as error:
            raise adapter_fit_error(spec.peft, spec.pretrained, error) from None
    target = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = model.to(target).eval()
    loaded = LoadedModel(spec=spec, model=model, tokenizer=tokenizer)
    shared_models[spec] = loaded
    return loaded
