"""A subject whose weights change never keeps its old fingerprint, whatever its size, mtime
or inode: the fingerprint memo is keyed by the files' content."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

import pytest

from ground_truth import subject
from harness_plugins.references import ReferencePipeline


def _fingerprint(model: Path) -> str:
    subject.shared_models.clear()  # a new process: nothing live, only the memo
    gc.collect()
    pipeline = ReferencePipeline("input_ablation", {"pretrained": str(model)}, model_arguments=[])
    pipeline.ensure(2)
    return pipeline.record.subject_fingerprint


def _swap(target: Path, source: Path, in_place: bool) -> None:
    """``source``'s weights into ``target``: same size, mtime forced back to the old one."""
    stat = target.stat()
    assert source.stat().st_size == stat.st_size
    if in_place:  # same inode
        with target.open("r+b") as out:
            out.write(source.read_bytes())
    else:  # a new file moved over it, as an archive or image would leave it
        shutil.copy(source, target.with_suffix(".new"))
        os.replace(target.with_suffix(".new"), target)
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size
    assert target.stat().st_mtime_ns == stat.st_mtime_ns


@pytest.mark.parametrize("in_place", [False, True])
def test_weights_replaced_at_the_same_size_and_mtime_get_a_new_fingerprint(
    tiny_llama, tiny_llama_other, tmp_path, in_place
):
    model = tmp_path / "model"
    shutil.copytree(tiny_llama, model)
    old = _fingerprint(model)
    assert _fingerprint(model) == old  # remembered: no weights loaded
    _swap(model / "model.safetensors", tiny_llama_other / "model.safetensors", in_place)
    new = _fingerprint(model)
    assert new != old
    assert new == _fingerprint(tiny_llama_other)


def test_the_memo_key_follows_content_not_metadata(tiny_llama, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_llama, model)
    spec = subject.ModelSpec.from_arguments({"pretrained": str(model)})
    source = subject.ModelSource(str(model), None)
    key = subject.files_key(spec, source)
    weights = model / "model.safetensors"
    os.utime(weights, ns=(0, 0))  # metadata only: the same key
    shutil.copy(weights, tmp_path / "copy")
    os.replace(tmp_path / "copy", weights)  # a new inode, same content
    assert subject.files_key(spec, source) == key
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of the last weight
    weights.write_bytes(bytes(data))
    os.utime(weights, ns=(0, 0))
    assert subject.files_key(spec, source) != key
