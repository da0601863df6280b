"""``introspect ground-truth``: build, list, verify and remove cached reference datasets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from harness_plugins.commands.common import metadata_option, table, type_name
from harness_plugins.errors import IntrospectError


def cmd_ground_truth_build(args: argparse.Namespace) -> int:
    from ground_truth.locks import check_timeout, lock_timeout, set_lock_timeout
    from harness_plugins.references import ReferencePipeline

    given = args.lock_timeout
    set_lock_timeout(None if given is None else check_timeout(given, "--lock-timeout"))
    lock_timeout()  # a bad $INTROSPECT_LOCK_TIMEOUT is an error before any work

    metadata = {**metadata_option(args.metadata), "subject": args.subject}
    if args.subject_peft:
        metadata["subject_peft"] = args.subject_peft
    pipeline = ReferencePipeline(type_name(args.task), metadata)
    if args.limit is not None and args.limit < 1:
        raise IntrospectError(
            f"ground-truth build: --limit {args.limit} is not positive; give a number of "
            "documents of 1 or more, or leave --limit out to build them all"
        )
    docs = pipeline.ensure(args.limit or len(pipeline.questions()))
    record = pipeline.record
    built = record.references_built
    how = f"built {built} in {record.reference_build_seconds:.1f} s" if built else "all from cache"
    print(f"{pipeline.task}: {len(docs)} references for {args.subject} ({how})")
    print(f"  subject fingerprint {record.subject_fingerprint}, key {record.reference_key}")
    print(f"  {record.reference_cache}")
    return 0


def cmd_ground_truth_ls(args: argparse.Namespace) -> int:
    from ground_truth.cache import ReferenceStore
    from ground_truth.store import cache_root

    store = ReferenceStore()
    entries = store.entries(full=True)  # as a run reads them
    rows = [
        (
            e["explanation_type"],
            e["type_version"],
            e.get("subject", "?"),
            e["subject_fingerprint"],
            e["rows"],
            e["updated"],
            e["key"],
            "ok" if e["problem"] is None else f"BROKEN: {e['problem']}",
        )
        for e in entries
    ]
    if rows:
        print(
            table(
                ["type", "version", "subject", "fingerprint", "rows", "updated", "key", "state"],
                rows,
            )
        )
    broken = sum(e["problem"] is not None for e in entries)
    note = f" ({broken} broken: rebuilt on next use, or `ground-truth rm KEY`)" if broken else ""
    print(f"\n{len(rows)} reference datasets in {store.root}{note}")
    _other_stores(cache_root())
    return 0


def _other_stores(root: Path) -> None:
    """One line per other store (maps, artifacts, models, the fingerprint memo), checked as
    a run reads it, and one line per broken entry in it."""
    from ground_truth.inventory import STORES, entries

    found = [e for e in entries(root) if e.store != "ground_truth"]
    for name in STORES[1:]:
        mine = [e for e in found if e.store == name]
        bad = [e for e in mine if e.problem is not None]
        what = "1 file" if name.endswith(".json") else f"{len(mine)} entries"
        state = f"{len(bad)} broken" if bad else "ok"
        print(f"{name}: {what if mine else 'none'}{'' if not mine else f' ({state})'}")
        for entry in bad:
            print(f"  BROKEN {entry.path.relative_to(root)}: {entry.problem}")


def cmd_ground_truth_verify(args: argparse.Namespace) -> int:
    """Check every entry of every store (references, maps, artifacts, converted models, the
    fingerprint memo) against its checksums (every file hashed), and that each loads."""
    from ground_truth.inventory import entries
    from ground_truth.store import cache_root

    root = cache_root()
    found = entries(root, full=True)
    broken = 0
    for entry in found:
        if entry.problem is not None:
            broken += 1
            print(f"BROKEN {entry.path.relative_to(root)}: {entry.problem}")
        elif args.verbose:
            print(f"ok     {entry.path.relative_to(root)}")
    print(f"{len(found)} cache entries checked in {root}, {broken} broken")
    if broken:
        print(
            "broken entries are rebuilt on next use; `introspect ground-truth rm KEY` removes them"
        )
    return 1 if broken else 0


def cmd_ground_truth_rm(args: argparse.Namespace) -> int:
    from ground_truth.cache import ReferenceStore

    store = ReferenceStore()
    if not (args.all or args.keys or args.type is not None):
        raise IntrospectError(
            "ground-truth rm needs KEY..., --type TYPE or --all (see `introspect ground-truth ls`)"
        )
    if any(not k.strip() for k in args.keys) or (args.type is not None and not args.type.strip()):
        raise IntrospectError(
            "ground-truth rm: an empty KEY or --type would select every dataset; give keys "
            "or a type from `introspect ground-truth ls`, or --all to remove them all"
        )
    entries = store.entries()
    if args.type is not None and not args.all:
        types = {e["explanation_type"] for e in entries}
        if type_name(args.type) not in types:
            raise IntrospectError(
                f"no reference dataset of type {args.type!r}; cached types: "
                f"{', '.join(sorted(types)) or 'none'} (`introspect ground-truth ls` lists them)"
            )
    chosen = [
        e
        for e in entries
        if args.all
        or (args.type and e["explanation_type"] == type_name(args.type))
        or any(e["key"].startswith(k) for k in args.keys)
    ]
    unknown = [k for k in args.keys if not any(e["key"].startswith(k) for e in entries)]
    if unknown:
        raise IntrospectError(
            f"no reference dataset with key {', '.join(unknown)}; `introspect ground-truth ls` lists them"
        )
    for entry in chosen:  # nothing is removed before every selector has matched
        store.remove(Path(entry["path"]))
        print(f"removed {entry['explanation_type']} {entry['key']} ({entry['rows']} rows)")
    print(f"{len(chosen)} removed")
    return 0


def add_commands(sub: Any) -> None:
    ground_truth = sub.add_parser(
        "ground-truth", help="build, list and remove cached reference datasets"
    )
    gt = ground_truth.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = gt.add_parser("build", help="build (or extend) the references of a task for a subject")
    build.add_argument("task", help="task or explanation type, e.g. introspect_input_ablation")
    build.add_argument("--subject", required=True, help="model alias, local folder or Hub id")
    build.add_argument("--subject-peft", help="PEFT adapter applied to the subject")
    build.add_argument("--limit", type=int, help="build only the first N documents")
    build.add_argument("--metadata", help="task options as JSON, as for lm_eval --metadata")
    build.add_argument(
        "--lock-timeout",
        metavar="SECONDS",
        help="give up after this long when another process builds the same entry "
        "(default: $INTROSPECT_LOCK_TIMEOUT, else wait)",
    )
    build.set_defaults(func=cmd_ground_truth_build)
    gt.add_parser(
        "ls", help="list cached reference datasets and the other stores (broken ones marked)"
    ).set_defaults(func=cmd_ground_truth_ls)
    verify = gt.add_parser("verify", help="check every cache entry against its checksums")
    verify.add_argument("-v", "--verbose", action="store_true", help="list sound entries too")
    verify.set_defaults(func=cmd_ground_truth_verify)
    rm = gt.add_parser("rm", help="remove cached reference datasets")
    rm.add_argument("keys", nargs="*", help="keys (or key prefixes) from `ground-truth ls`")
    rm.add_argument("--type", help="remove every dataset of this explanation type")
    rm.add_argument("--all", action="store_true", help="remove every dataset")
    rm.set_defaults(func=cmd_ground_truth_rm)
