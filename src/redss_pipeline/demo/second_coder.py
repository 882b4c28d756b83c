"""The demo's second coder: codes each show's ICR sample blind, so the demo shows real agreement figures.

Stage 3 writes every show's ICR sample as a Coda dataset without labels (``Outputs/ICR/Coda Files/<show>.json``).
This coder codes it the way :mod:`redss_pipeline.demo.simulated_coder` codes the main datasets - from the synthetic
workspace's own truth, with its own identity, seed and share of mistakes - and writes what Coda's ``get.py`` would
download into ``Coded Coda Files/ICR/<show>.json``. The first coder is the main dataset's coded file.

It disagrees with the first coder at a seeded rate, in two ways:

| how                      | share (default)     | effect                                                        |
| ------------------------ | ------------------- | ------------------------------------------------------------- |
| its own random mistakes  | ``error`` 6%        | a random other Normal code instead of the truth                |
| codes close in meaning   | ``confusion`` 50%   | of the messages that mean one of the :data:`CONFUSIONS` codes, |
|                          |                     | this share gets its neighbour instead                         |
| left unreviewed          | ``skip`` 5%         | no checked label: not coded by both, left out of the measures  |

The confusions are what makes the demo's agreement table realistic: real coders disagree most on codes that sit
close together (job creation and skills training), so those come first in the report's per-code table. Every
choice is drawn from a generator seeded by the seed and the message id: the same data root gives the same files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from redss_pipeline.core.atomic_files import atomic_write_text
from redss_pipeline.core.code_scheme import CodeScheme
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot
from redss_pipeline.demo.simulated_coder import CoderProfile, code_dataset, dataset_roles

__all__ = ["CONFUSIONS", "SECOND_CODER", "code_icr_datasets", "main"]

SECOND_CODER = CoderProfile(coder="coder.two@example.org", seed=2, error=0.06, skip=0.05)
"""The second coder's identity, seed and shares of mistakes and unreviewed messages."""

CONFUSION_SHARE = 0.5

CONFUSIONS: Mapping[str, Mapping[str, str]] = {
    "s01e01": {"job_creation": "skills_training", "food_assistance": "financial_support"},
    "s01e02": {"integrate_other": "same_identity"},
    "s01e03": {"discriminating_actor_government": "discriminating_actor_ngos"},
    "s01e04": {"good_governance": "support_justice_system"},
}
"""Per show, reasons codes the second coder confuses with a neighbour (StringValue -> StringValue)."""


def _confused(messages: list[dict[str, Any]], scheme: CodeScheme, pairs: Mapping[str, str], *, coder: str,
              seed: int, share: float) -> list[dict[str, Any]]:
    """The coder's own reasons labels with a confused code replaced by its neighbour, for a seeded share of the
    messages."""
    by_value = {code.string_value: code.code_id for code in scheme.codes}
    swaps = {by_value[a]: by_value[b] for a, b in pairs.items()}
    out = []
    for message in messages:
        rng = random.Random(f"{seed}|confusion|{message['MessageID']}")
        if rng.random() >= share:
            out.append(message)
            continue
        labels = [
            {**label, "CodeID": swaps[label["CodeID"]]}
            if label["Origin"]["OriginID"] == coder and label["SchemeID"].startswith(scheme.scheme_id)
            and label["CodeID"] in swaps else label
            for label in message["Labels"]
        ]
        out.append({**message, "Labels": labels})
    return out


def code_icr_datasets(data_root: str, *, config: PipelineConfig, profile: CoderProfile = SECOND_CODER,
                      confusion: float = CONFUSION_SHARE) -> dict[str, int]:
    """Codes every show's ICR Coda file of a data root into ``Coded Coda Files/ICR/``; returns the messages coded
    per show. A show without an ICR Coda file (stage 3 has not run) is skipped."""
    root = DataRoot(data_root)
    roles = dataset_roles(config)
    done: dict[str, int] = {}
    for plan in config.rqa_plans:
        source = root.icr_coda_dir / plan.coda_file
        if not source.is_file():
            continue
        messages = json.loads(source.read_text(encoding="utf-8"))
        coded = code_dataset(messages, roles[plan.coda_file], profile=profile)
        coded = _confused(coded, plan.scheme, CONFUSIONS.get(plan.name, {}), coder=profile.coder, seed=profile.seed,
                          share=confusion)
        root.icr_coded_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(root.icr_coded_dir / plan.coda_file,
                          json.dumps(coded, indent=2, ensure_ascii=False) + "\n")
        done[plan.coda_file] = len(coded)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m redss_pipeline.demo.second_coder <data-root> [--seed N] [--error P] [--skip P] [--confusion P]``."""
    import sys

    from redss_pipeline.core.cli import ArgumentParser, run_main
    from redss_pipeline.core.config import load_config

    def run(args: Sequence[str]) -> int:
        parser = ArgumentParser(prog="second_coder", description="Code the demo's ICR samples blind as a second "
                                "coder (seeded, with mistakes) into <data-root>/Coded Coda Files/ICR/.")
        parser.add_argument("data_root", metavar="<data-root>")
        parser.add_argument("--seed", type=int, default=SECOND_CODER.seed)
        parser.add_argument("--error", type=float, default=SECOND_CODER.error, help="share of wrong codes")
        parser.add_argument("--skip", type=float, default=SECOND_CODER.skip, help="share left unreviewed")
        parser.add_argument("--confusion", type=float, default=CONFUSION_SHARE,
                            help="share of the messages of a confused code given its neighbour")
        parsed = parser.parse_args(list(args))
        profile = replace(SECOND_CODER, seed=parsed.seed, error=parsed.error, skip=parsed.skip)
        done = code_icr_datasets(parsed.data_root, config=load_config(), profile=profile, confusion=parsed.confusion)
        print("second coder (ICR samples): " + ", ".join(f"{name} {n:,}" for name, n in done.items()))
        return 0

    return run_main(run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
