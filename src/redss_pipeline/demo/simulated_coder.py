"""A seeded simulated coder for the demo: codes the demo's Coda files the way a person would, with mistakes.

With nothing coded every show answer is NR and the analysis report is empty, so the demo needs coded files. This
coder reads ``Outputs/Coda Files/<dataset>.json`` (what stage 3 exported), decides each message's codes from the
synthetic workspace's own truth (below: what each answer of the workspace's answer banks means), and writes what
Coda's ``get.py`` would download into ``Coded Coda Files/<dataset>.json``. Like a person it gets some wrong, and
leaves some unreviewed:

| what                     | share (default) | effect                                                      |
| ------------------------ | --------------- | ----------------------------------------------------------- |
| unreviewed               | ``skip`` 10%    | no checked label: the message stays NR                      |
| a wrong code             | ``error`` 8%    | a random other Normal code of the scheme instead of the truth |
| answers it cannot place  | (by content)    | NC (not coded), as coders do for off-topic replies          |

The labels are those Coda writes for a coder (``OriginType`` ``Manual``, ``Checked`` true, newest first); their
times come from the ``coded_at`` argument, never from the clock. Everything is a pure function of the inputs and
the seed, so the demo's report is the same on every machine.

:func:`code_dataset` codes one messages list and is what a second coder (inter-coder reliability) calls with its own
seed and error rate; :func:`simulate_coding` codes every dataset of a data root.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redss_pipeline.core.atomic_files import atomic_write_text
from redss_pipeline.core.code_scheme import NC, Code, CodeScheme
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.data_root import DataRoot

__all__ = [
    "ANSWER_TRUTH",
    "RQA_TRUTH",
    "CoderProfile",
    "SchemeRole",
    "code_dataset",
    "dataset_roles",
    "simulate_coding",
    "truth_codes",
]

# What each show answer of the synthetic workspace means: a fragment of the answer (lower case) -> the codes of
# the show's reasons scheme and, for shows with a binary question, its code. The longest fragment contained in a
# message wins, so greetings and sign-offs around an answer do not matter.
RQA_TRUTH: Mapping[str, Mapping[str, tuple[tuple[str, ...], str | None]]] = {
    "s01e01": {
        "carruurta barakacayaasha la siiyo waxbarasho": (("access_to_education",), None),
        "biyo nadiif ah": (("access_to_water",), None),
        "isbitaalo iyo xarumo caafimaad": (("availability_of_health_facilities",), None),
        "dowladu waa inay taageerto bulshada": (("government_to_support_communities",), None),
        "shaqo abuur": (("job_creation",), None),
        "dhul ay ku noolaadaan": (("land",), None),
        "nabad iyo amni": (("peace_and_security",), None),
        "ku laabtaan deegaankoodii": (("return_to_area_of_origin",), None),
        "guryo loo dhiso": (("shelter",), None),
        "tababar xirfadeed": (("skills_training",), None),
        "gargaar cunto iyo lacag": (("food_assistance", "financial_support"), None),
        "gargaarka si caddaalad ah": (("just_and_transparent_delivery_of_aid",), None),
        "guddiyo laga sameeyo": (("committees_to_be_organised_on_displacement",), None),
        "bulshada ha lala tashado": (("community_consultation",), None),
        "nadaafadda xeryaha": (("sanitation_and_hygiene",), None),
        "waan ku raacsanahay": (("NC",), None),
        "nabad iyo horumar": (("peace_and_security",), None),
        "jobs for youth": (("job_creation",), None),
        "they need shelter and clean water": (("shelter", "access_to_water"), None),
        "give them land": (("land",), None),
        "education for the children": (("access_to_education",), None),
        "help them go back home": (("return_to_area_of_origin", "government_to_support_communities"), None),
        "hello there": (("NC",), None),
        "lacag ha loo ururiyo": (("crowdfunding",), None),
        "hal meel la dejiyo": (("keep_in_one_place",), None),
    },
    "s01e02": {
        "waa walaalaheen": (("same_identity",), "integrate"),
        "diinteena ayaa na fareysa": (("religion_commands_it",), "integrate"),
        "meel baahi ah": (("come_from_a_place_of_need",), "integrate"),
        "beeraley iyo xoolo dhaqato": (("they_are_farmers_pastoralists",), "return"),
        "cudurro ayay la yimaadaan": (("can_contaminate_with_disease",), "return"),
        "cadaadis ayay ku hayaan": (("they_put_pressure_on_basic_services",), "return"),
        "we share one identity": (("same_identity",), "integrate"),
        "makes the community stronger": (("integration_strengthens_social_cohesion",), "integrate"),
        "given jobs here": (("should_be_given_jobs",), "integrate"),
        "lagu daboolayaa miyiga": (("needs_can_be_better_met_in_country_side",), "return"),
        "si wanaagsan u habeysanto": (("government_to_be_structured_in_right_way",), "ambivalent"),
        "haa in la dhex geeyo": (("integrate_other",), "integrate"),
        "la tashi ha lala sameeyo": (("consult_with_them",), "ambivalent"),
        "meeshii ay ka yimaadeen": (("return_other",), "return"),
    },
    "s01e03": {
        "xagga waxbarashada": (("axes_of_discrimination_access_to_education",), "yes"),
        "lama takooro waa muwaadiniin": (("reasons_for_lack_of_discrimination_are_citizens",), "no"),
        "shaqada lagama siiyo": (("axes_of_discrimination_access_to_job_opportunities",), "yes"),
        "isu haysata inay ka sarreeyaan": (("reasons_for_discrimination_community_feels_superior",), "yes"),
        "dowladda ayaa takoorta": (("discriminating_actor_government",), "yes"),
        "hay'adaha ayaa kala eexda": (("discriminating_actor_ngos",), "yes"),
        "we are all muslims": (("reasons_for_lack_of_discrimination_religion",), "no"),
        "denied health care": (("axes_of_discrimination_access_to_health_care",), "yes"),
        "isku dal iyo isku dad": (("reasons_for_lack_of_discrimination_common_identity",), "no"),
        "guryaha ayaa laga saaraa": (("axes_of_discrimination_access_to_housing",), "yes"),
        "xuquuqdooda waa la xadgudbaa": (("axes_of_discrimination_rights_are_violated",), "yes"),
        "ma jiraan barakacayaal": (("reasons_for_lack_of_discrimination_no_displaced_people",), "no"),
        "mudan yihiin in la caawiyo": (("reasons_for_lack_of_discrimination_deserve_assistance",), "no"),
        "isdhexgal la'aan": (("reasons_for_discrimination_lack_of_host-idp_interaction",), "yes"),
    },
    "s01e04": {
        "guryo joogto ah": (("build_housing",), None),
        "dhul in la siiyo": (("procure_them_land",), None),
        "meesha ay hadda joogaan": (("allow_them_to_stay_on_current_land",), None),
        "dowlad wanaagsan": (("good_governance",), None),
        "sinnaan la'aanta": (("combat_inequality",), None),
        "guddi loo sameeyo": (("set_up_committee_to_handle",), None),
        "caddaalad iyo garsoor": (("support_justice_system",), None),
        "loo celiyo deegaankoodii": (("return_and_relocation",), None),
        "build them houses": (("build_housing",), None),
        "good governance and justice": (("good_governance", "support_justice_system"), None),
        "nabad iyo ammaan": (("peace_and_security",), None),
        "diinta ayaa xal u ah": (("religion",), None),
    },
}

# What short survey answers of the workspace mean, for the schemes without an auto-coder suggestion to confirm.
ANSWER_TRUTH: Mapping[str, Mapping[str, str]] = {
    "hh_language": {
        "somali and english": "other", "af maxaa iyo af maay": "maimai", "maay": "maimai", "somali": "somali",
        "soomaali": "somali", "english": "english", "arabic": "arabic", "carabi": "arabic",
        "swahili": "kiswahili",
    },
}


_CODED_AT = datetime(2019, 1, 20, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class CoderProfile:
    """Who codes and how well: the coder's e-mail (the label's Origin), the seed, the shares of mistakes and of
    messages left unreviewed, and when the coding happened."""

    coder: str = "coder.one@example.org"
    seed: int = 1
    error: float = 0.08
    skip: float = 0.10
    coded_at: datetime = _CODED_AT


@dataclass(frozen=True)
class SchemeRole:
    """A scheme of a Coda dataset and how it is coded: ``multi`` (reasons), ``single`` (a survey, a binary
    question, a location level); ``show`` names the show of an RQA scheme; ``binary`` marks its yes/no question."""

    scheme: CodeScheme
    multi: bool
    show: str | None = None
    binary: bool = False
    answer: str | None = None


def dataset_roles(config: PipelineConfig) -> dict[str, list[SchemeRole]]:
    """The schemes of each Coda dataset of the configuration, in the order coders see them."""
    roles: dict[str, list[SchemeRole]] = {}
    for plan in config.rqa_plans:
        roles.setdefault(plan.coda_file, []).append(SchemeRole(plan.scheme, True, plan.name))
        if plan.binary is not None:
            roles[plan.coda_file].append(SchemeRole(plan.binary.scheme, False, plan.name, binary=True))
    for survey in config.survey_plans:
        roles.setdefault(survey.coda_file, []).append(SchemeRole(survey.scheme, False, answer=survey.analysis_key))
    return roles


def truth_codes(show: str, text: str) -> tuple[tuple[str, ...], str | None] | None:
    """The reasons codes and binary code a show answer means, or None when the answer fits no known meaning."""
    lowered = text.lower()
    found = [fragment for fragment in RQA_TRUTH.get(show, {}) if fragment in lowered]
    if not found:
        return None
    return RQA_TRUTH[show][max(found, key=len)]


def _label(scheme_id: str, code: Code, moment: datetime, coder: str) -> dict[str, Any]:
    return {"SchemeID": scheme_id, "CodeID": code.code_id, "DateTimeUTC": moment.isoformat(timespec="microseconds"),
            "Checked": True, "Origin": {"OriginID": coder, "Name": coder, "OriginType": "Manual"}}


def _by_value(scheme: CodeScheme, value: str) -> Code:
    return next(code for code in scheme.codes if code.string_value == value)


def _mistaken(scheme: CodeScheme, right: Code, rng: random.Random) -> Code:
    others = [code for code in scheme.normal_codes if code != right]
    return others[int(rng.random() * len(others))] if others else right


def code_dataset(messages: Sequence[Mapping[str, Any]], roles: Sequence[SchemeRole], *,
                 profile: CoderProfile) -> list[dict[str, Any]]:
    """The messages of one Coda dataset with the simulated coder's labels prepended (newest first, as Coda
    keeps them). Messages are coded in file order; each draws from a generator seeded by the profile's seed
    and the message id, so adding messages does not change how the others are coded."""
    coded = []
    for position, message in enumerate(messages):
        rng = random.Random(f"{profile.seed}|{message['MessageID']}")
        moment = profile.coded_at + timedelta(seconds=position)
        labels = list(message.get("Labels", []))
        if rng.random() >= profile.skip:
            labels = _decide(message, roles, rng, moment, profile) + labels
        coded.append({**message, "Labels": labels})
    return coded


def _decide(message: Mapping[str, Any], roles: Sequence[SchemeRole], rng: random.Random, moment: datetime,
            profile: CoderProfile) -> list[dict[str, Any]]:
    text = message.get("Text", "")
    new: list[dict[str, Any]] = []
    existing = {label["SchemeID"]: label for label in reversed(message.get("Labels", []))}
    surveys = [role for role in roles if not (role.multi or role.binary)]
    # A dataset of several survey schemes (the five location levels) is coded on the levels the auto-coder
    # suggested (the others are derived by stage 3); with no suggestion, on its first scheme.
    suggested = [role for role in surveys if role.scheme.scheme_id in existing] or surveys[:1]
    for role in roles:
        scheme = role.scheme
        if role in surveys and role not in suggested:
            continue
        if role.multi or role.binary:
            meaning = truth_codes(role.show or "", text)
            if role.multi:
                values = meaning[0] if meaning else (NC,)
            else:
                values = (meaning[1],) if meaning and meaning[1] else (NC,)
        else:
            suggestion = existing.get(scheme.scheme_id)
            if suggestion is not None:
                values = (scheme.code_by_id(suggestion["CodeID"]).string_value,)
            else:
                table = ANSWER_TRUTH.get(role.answer or "", {})
                lowered = text.lower()
                matches = [fragment for fragment in table if fragment in lowered]
                values = (table[max(matches, key=len)],) if matches else (NC,)
        codes = [_by_value(scheme, value) for value in values]
        if codes[0].is_normal and rng.random() < profile.error:
            codes[0] = _mistaken(scheme, codes[0], rng)
        # Several codes of a reasons scheme go under duplicates of its SchemeID (Coda's multi-coding), one each.
        for i, code in enumerate(dict.fromkeys(codes)):
            scheme_id = scheme.scheme_id if i == 0 else f"{scheme.scheme_id}-{i}"
            new.append(_label(scheme_id, code, moment, profile.coder))
    return list(reversed(new))


def simulate_coding(data_root: str | Path, *, config: PipelineConfig, profile: CoderProfile = CoderProfile()
                    ) -> dict[str, int]:
    """Codes every exported Coda dataset of a data root into ``Coded Coda Files/``; returns messages coded per
    dataset. A dataset without an exported file is skipped."""
    root = DataRoot(data_root)
    done: dict[str, int] = {}
    for name, roles in dataset_roles(config).items():
        exported = root.coda_dir / name
        if not exported.is_file():
            continue
        messages = json.loads(exported.read_text(encoding="utf-8"))
        coded = code_dataset(messages, roles, profile=profile)
        root.coded_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(root.coded_dir / name, json.dumps(coded, indent=2, ensure_ascii=False) + "\n")
        done[name] = len(coded)
    return done


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m redss_pipeline.demo.simulated_coder <data-root> [--seed N] [--error P] [--skip P]``."""
    import sys

    from redss_pipeline.core.cli import ArgumentParser, run_main
    from redss_pipeline.core.config import load_config

    def run(args: Sequence[str]) -> int:
        parser = ArgumentParser(prog="simulated_coder", description="Code the demo's Coda files like a person "
                                "would (seeded, with mistakes) into <data-root>/Coded Coda Files/.")
        parser.add_argument("data_root", metavar="<data-root>")
        parser.add_argument("--seed", type=int, default=CoderProfile.seed)
        parser.add_argument("--error", type=float, default=CoderProfile.error, help="share of wrong codes")
        parser.add_argument("--skip", type=float, default=CoderProfile.skip, help="share left unreviewed")
        parsed = parser.parse_args(list(args))
        done = simulate_coding(parsed.data_root, config=load_config(),
                               profile=CoderProfile(seed=parsed.seed, error=parsed.error, skip=parsed.skip))
        print("simulated coder: " + ", ".join(f"{name} {n:,}" for name, n in done.items()))
        return 0

    return run_main(run, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    raise SystemExit(main())
