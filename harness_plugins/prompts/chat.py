"""Turning chat messages into model input: the model's own template, or a plain transcript.

Subjects answer questions through their chat template when their tokenizer has one
(that is how an instruct model is meant to be asked); explainers get their conversation
rendered the same way unless the user asks lm-eval to do it (``--apply_chat_template``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Message = dict[str, str]

_ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def plain_transcript(messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
    """``User: ...`` / ``Assistant: ...`` lines, for models without a chat template."""
    lines = [f"{_ROLE_NAMES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages]
    text = "\n\n".join(lines)
    return text + ("\n\nAssistant:" if add_generation_prompt else "")


def render(tokenizer: Any, messages: Sequence[Message], mode: str = "auto") -> tuple[str, bool]:
    """The prompt text, and whether it came from the chat template (it then holds its own
    special tokens, so it must be tokenized without adding more).

    ``mode``: ``template`` requires the tokenizer's chat template, ``plain`` never uses
    it, ``auto`` uses it when there is one.
    """
    use_template = mode == "template" or (mode == "auto" and has_chat_template(tokenizer))
    if use_template:
        if not has_chat_template(tokenizer):
            raise ValueError(
                f"{getattr(tokenizer, 'name_or_path', 'the tokenizer')} has no chat template; "
                "use chat_format=plain or auto"
            )
        text = tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True
        )
        return text, True
    return plain_transcript(messages), False


def encode_prompt(
    tokenizer: Any, messages: Sequence[Message], assistant_prefix: str = "", mode: str = "auto"
) -> list[int]:
    """Token ids of the rendered conversation, with the assistant's reply begun by ``assistant_prefix``."""
    text, templated = render(tokenizer, messages, mode)
    if assistant_prefix:
        text += assistant_prefix if templated else " " + assistant_prefix
    return list(tokenizer(text, add_special_tokens=not templated)["input_ids"])
