"""The docs cannot rot: their commands, flags and links are checked against the code.

Every `introspect ...` and `lm_eval ...` command in a fenced shell block of README.md or
docs/*.md (and every inline `introspect ...` span) must name a real subcommand and only
flags the real argument parser has; every flag named in a section of docs/commands.md must
belong to that section's command; every relative link must reach an existing file (and
heading). Parsers only: no model loads.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMANDS_PAGE = ROOT / "docs" / "commands.md"

_FENCE = re.compile(r"^\s*```\s*([\w-]*)")
_SHELL = {"bash", "sh", "shell", "console"}
_INLINE = re.compile(r"`([^`\n]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")", "$("}
_FLAG = re.compile(r"^--?[A-Za-z][\w-]*")


# --- the parsers -----------------------------------------------------------------------


def introspect_parser() -> argparse.ArgumentParser:
    from harness_plugins.commands.cli import build_parser

    return build_parser()


def lm_eval_run_parser() -> argparse.ArgumentParser:
    """lm-eval's own `run` parser: what `lm_eval ARGS` and `introspect eval ARGS` accept."""
    from lm_eval._cli.harness import HarnessCLI

    return _subcommands(HarnessCLI()._parser)["run"]


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _all_flags(parser: argparse.ArgumentParser) -> set[str]:
    """Flags of a command and of every subcommand below it (a section about `train`)."""
    flags = set(parser._option_string_actions)
    for child in _subcommands(parser).values():
        flags |= _all_flags(child)
    return flags


# --- the checker -----------------------------------------------------------------------


def command_problems(
    argv: list[str],
    introspect: argparse.ArgumentParser,
    lm_eval: argparse.ArgumentParser,
    complete: bool = True,
) -> list[str]:
    """Why ``argv`` (an `introspect` or `lm_eval` command) would not parse; [] when it would.

    Checks the subcommand path and every flag; values and positionals are left alone (docs
    use placeholders such as TASK). ``complete=False`` lets prose name a command group
    (`introspect train`) without its subcommand.
    """
    program, rest = argv[0], argv[1:]
    if program in ("lm_eval", "lm-eval"):
        parser, name = lm_eval, "lm_eval"
        if rest[:1] == ["run"]:
            rest = rest[1:]
    elif program == "introspect":
        parser, name = introspect, "introspect"
        while (choices := _subcommands(parser)) and rest:
            words = [i for i, token in enumerate(rest) if not token.startswith("-")]
            if not words:
                break
            word = rest[words[0]]
            if word not in choices:
                return [f"{name}: no subcommand {word!r} (has {', '.join(sorted(choices))})"]
            name, rest = f"{name} {word}", rest[words[0] + 1 :]
            parser = lm_eval if name == "introspect eval" else choices[word]
        if complete and _subcommands(parser) and name != "introspect eval":
            return [f"{name}: a subcommand is missing"]
    else:
        return []
    problems = []
    for token in rest:
        match = _FLAG.match(token)
        if match and match.group(0) not in parser._option_string_actions:
            problems.append(f"{name}: no flag {match.group(0)}")
    return problems


def split_commands(line: str) -> list[list[str]]:
    """A shell line as simple commands: comments, operators and VAR=value prefixes dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    for token in lexer:
        if token in _OPERATORS or set(token) <= set("&|;()<>"):
            commands.append([])
        elif commands[-1] or not re.match(r"^\w+=", token):
            commands[-1].append(token)
    return [c for c in commands if c]


def _quotes_open(line: str) -> bool:
    try:
        shlex.split(line, comments=True)
    except ValueError:
        return True
    return False


def shell_lines(text: str) -> Iterator[str]:
    """Commands of fenced shell blocks: backslash continuations and open quotes joined."""
    inside, pending = False, ""
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if fence:
            inside = not inside and fence.group(1) in _SHELL
            continue
        if not inside:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        if _quotes_open(pending + line):
            pending += line + "\n"
            continue
        yield pending + line
        pending = ""


def _prose(text: str) -> str:
    """The text outside fenced blocks."""
    kept, inside = [], False
    for line in text.splitlines():
        if _FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            kept.append(line)
    return "\n".join(kept)


def documented_commands(text: str) -> list[tuple[list[str], bool]]:
    """Every `introspect`/`lm_eval` command a page shows, and whether it is a whole command.

    Shell blocks hold whole commands; an inline `introspect ...` span may name a group.
    """
    found = []
    for line in shell_lines(text):
        found += [(c, True) for c in split_commands(line) if c[0] in ("introspect", "lm_eval")]
    for span in _INLINE.findall(_prose(text).replace("\n", " ")):
        if span.startswith("introspect "):
            found += [(c, False) for c in split_commands(span) if c[0] == "introspect"]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(text).splitlines():
        if match := re.match(r"^#{1,6}\s+(.*)", line):
            base = slug(match.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def link_problems(page: Path) -> list[str]:
    """Relative links of a page that reach no file, or no heading of a Markdown file."""
    problems = []
    for target in _LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z]+:", target):
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        if not path.exists():
            problems.append(f"{page.name}: {target}: no such file")
        elif anchor and path.suffix == ".md":
            if anchor not in anchors(path.read_text(encoding="utf-8")):
                problems.append(f"{page.name}: {target}: no such heading")
    return problems


_REPO_PATH = re.compile(
    r"^(?:harness_plugins|ground_truth|tests|benchmarks|examples|tasks|docs)/[\w./-]*$"
)


def path_problems(page: Path) -> list[str]:
    """Repository paths a page names in code spans (`ground_truth/store.py`) that do not exist."""
    spans = _INLINE.findall(_prose(page.read_text(encoding="utf-8")))
    return [
        f"{page.name}: `{span}`: no such path"
        for span in spans
        if _REPO_PATH.match(span) and not (ROOT / span).exists()
    ]


def section_flag_problems(
    text: str, introspect: argparse.ArgumentParser, lm_eval: argparse.ArgumentParser
) -> list[str]:
    """Flags named in prose under `## introspect X` that X (or lm-eval, when so said) lacks."""
    sections: list[tuple[str, list[str]]] = []
    for line in _prose(text).splitlines():
        if heading := re.match(r"^##\s+introspect\s+([\w-]+)", line):
            sections.append((heading.group(1), []))
        elif line.startswith("#"):
            sections.append(("", []))
        elif sections:
            sections[-1][1].append(line)
    lm_eval_flags = set(lm_eval._option_string_actions)
    problems = []
    for command, lines in sections:
        if not command:
            continue
        own = _subcommands(introspect).get(command)
        flags = lm_eval_flags if command == "eval" or own is None else _all_flags(own)
        for before, span in re.findall(
            r"(\S*\s?)`([^`]+)`", " ".join(line.strip() for line in lines)
        ):
            match = _FLAG.match(span)
            allowed = lm_eval_flags if "lm-eval's" in before else flags
            if match and match.group(0) not in allowed:
                problems.append(f"introspect {command}: no flag {match.group(0)}")
    return problems


# --- the docs as they are --------------------------------------------------------------


@pytest.fixture(scope="module")
def parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    return introspect_parser(), lm_eval_run_parser()


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_documented_command_parses(page, parsers):
    problems = []
    for argv, whole in documented_commands(page.read_text(encoding="utf-8")):
        found = command_problems(argv, *parsers, complete=whole)
        problems += [f"{' '.join(argv)}\n    {p}" for p in found]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_relative_link_reaches_a_file(page):
    assert not link_problems(page)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_named_repository_path_exists(page):
    assert not path_problems(page)


def test_the_commands_page_names_only_real_flags_and_every_command(parsers):
    text = COMMANDS_PAGE.read_text(encoding="utf-8")
    assert not section_flag_problems(text, *parsers)
    undocumented = [c for c in _subcommands(parsers[0]) if f"introspect {c}" not in text]
    undocumented = [c for c in undocumented if not re.search(rf"`{c}`", text)]
    assert not undocumented, f"introspect commands missing from docs/commands.md: {undocumented}"


def test_the_docs_show_commands_of_every_kind():
    found = [argv for page in DOCS for argv, _ in documented_commands(page.read_text())]
    shown = {" ".join(argv[:2]) for argv in found if argv[0] == "introspect"}
    for command in ("train", "matrix", "gate", "judge", "sae", "preferences", "ground-truth"):
        assert f"introspect {command}" in shown
    assert sum(argv[0] == "lm_eval" for argv in found) >= 5


def test_the_readme_stays_short_and_keeps_its_set_up_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert 'python -m pip install "tox>=4" && tox -e demo' in text
    assert 'python -m pip install "tox>=4" && tox ' in text
    # the headline result stands beside its floor and ceiling
    assert "| floor: references shuffled across questions |" in text
    assert "| ceiling of one fixed answer |" in text


# --- the checker catches what it should ------------------------------------------------


def test_a_flag_that_does_not_exist_is_caught(parsers):
    bad = command_problems(["introspect", "gate", "results/", "--no-such-flag", "1"], *parsers)
    assert bad == ["introspect gate: no flag --no-such-flag"]
    assert command_problems(["introspect", "train", "explainer", "--max_step", "3"], *parsers)
    assert command_problems(["lm_eval", "--modle", "hf", "--tasks", "x"], *parsers)
    assert command_problems(["introspect", "eval", "--no-such-flag"], *parsers)


def test_a_subcommand_that_does_not_exist_is_caught(parsers):
    assert command_problems(["introspect", "trian", "explainer"], *parsers)
    assert command_problems(["introspect", "train", "everything", "--out", "x"], *parsers)
    assert command_problems(["introspect", "ground-truth"], *parsers)


def test_real_commands_pass(parsers):
    for line in (
        "introspect train explainer --subject m --types input_ablation --max-steps 3 --out a/",
        "introspect ground-truth verify -v",
        "SVC=1 introspect gate r/ --min t/m=0.5 && introspect report r/  # comment --bogus",
        "lm_eval run --model introspect --model_args pretrained=m --tasks introspect --limit 3",
    ):
        for argv in split_commands(line):
            assert command_problems(argv, *parsers) == [], argv


def test_continued_lines_and_inline_spans_are_read(parsers):
    text = (
        "Run `introspect gate r/ --bogus` first.\n\n```bash\n"
        "introspect matrix --explainers a \\\n    --subjects b --tasks t --bogus-too\n"
        'lm_eval --metadata \'{"a": 1,\n  "b": 2}\' --limit 1\n```\n'
        "```python\nintrospect = 1  # not shell --ignored\n```\n"
    )
    problems = [
        p for argv, whole in documented_commands(text) for p in command_problems(argv, *parsers)
    ]
    assert sorted(problems) == [
        "introspect gate: no flag --bogus",
        "introspect matrix: no flag --bogus-too",
    ]


def test_a_section_flag_of_another_command_is_caught(parsers):
    text = "## introspect gate\n\nUse `--max-drop` and lm-eval's `--log_samples`, not `--epochs`.\n"
    assert section_flag_problems(text, *parsers) == ["introspect gate: no flag --epochs"]


def test_a_stale_path_is_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("See `ground_truth/store.py`, `ground_truth/gone.py` and `results/x`.\n")
    assert path_problems(page) == ["page.md: `ground_truth/gone.py`: no such path"]


def test_a_broken_link_is_caught(tmp_path):
    (tmp_path / "there.md").write_text("# Here\n\n## A `code` heading: yes\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](there.md) [ok](there.md#a-code-heading-yes) [web](https://x.org/missing)\n"
        "[gone](missing.md) [no anchor](there.md#nowhere)\n"
        "```bash\necho '[in code](ignored.md)'\n```\n"
    )
    assert link_problems(page) == [
        "page.md: missing.md: no such file",
        "page.md: there.md#nowhere: no such heading",
    ]
