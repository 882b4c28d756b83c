"""A synthetic CSAP Rapid Pro workspace: flows, contacts, runs and run archives, made up from a seed.

Real Rapid Pro cannot run offline, so the demo, the fetch-stage tests and the benchmarks read this workspace
through the local server in ``rapid_pro_server``. It is built to exercise what the pipeline must get right on
real data, not to be statistically faithful:

- the six CSAP flows with their result keys, and the API object shapes of Rapid Pro API v2 (the superset that
  every client version accepts: runs with integer ``id`` and ``uuid``, values with ``input`` and ``name``,
  contacts with ``blocked``, ``stopped`` and ``status``, archives with ``type`` and ``archive_type``);
- Somali and English answers, acknowledgement noise, STOP messages, runs without values, active runs, survey
  runs repeated by the same respondent (changed answers, keys answered only in the older run), answers with the
  sender's phone number typed into them and one spreadsheet formula;
- show replies over the four broadcast weeks plus the late deliveries behind each operational correction,
  with runs exactly at, and a microsecond either side of, every correction, project and channel boundary;
- contacts with several URNs (``tel:`` first, or ``telegram:``/``twitter:`` first), without URNs, with
  non-Somali numbers, and the project's two test contacts;
- the oldest runs moved into run archives (monthly and daily), which ``runs.json`` no longer returns.

Every phone number is fictitious but sits under a real Somali operator prefix (``+25261``, ``+25290``, ...)
with ``00`` after the prefix, so a de-identification scan finds any that leaks; ``Workspace.phone_numbers``
lists them all. Generation is a pure function of its arguments; the mutation methods (used by tests of the
incremental fetch) stay deterministic because they draw new UUIDs from a generator seeded from the same seed
and take their timestamps from a workspace clock that only moves forward, never from the wall clock.

Usage::

    workspace = generate_workspace(seed=1, size=2000)
    run = workspace.add_run(flow="csap_demog", contact=contact_uuid, answers={"gender": "naag"})
    workspace.modify_run(run["id"], answers={"age": "labaatan"})
    workspace.delete_contact(contact_uuid)
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import gzip
import hashlib
import json
import random
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from redss_pipeline.core.errors import PipelineError

__all__ = [
    "ResultSpec",
    "FlowSpec",
    "CSAP_FLOWS",
    "CSAP_TEST_CONTACT_UUIDS",
    "PROJECT_START",
    "PROJECT_END",
    "WorkspaceError",
    "Workspace",
    "SHAPES",
    "SHAPES_SUPERSET",
    "SHAPES_REAL",
    "ANONYMOUS_MODES",
    "generate_workspace",
    "format_timestamp",
    "parse_timestamp",
]

SHAPES_SUPERSET = "superset"
SHAPES_REAL = "real"
SHAPES = (SHAPES_SUPERSET, SHAPES_REAL)
ANONYMOUS_MODES = ("masked", "empty")

EAT = timezone(timedelta(hours=3))
_EPOCH = datetime(1970, 1, 1)
_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


class WorkspaceError(PipelineError):
    """A mutation of the synthetic workspace names something that does not exist or cannot change."""


@dataclass(frozen=True)
class ResultSpec:
    """One result of a flow: its snake_case key, human name, categories and the kind of answers it gets.

    ``kind`` picks the answer bank: ``rqa`` (free text about the show), ``gender``, ``location``, ``age``,
    ``yes_no``, ``language``, or anything else for generic short answers.
    """

    key: str
    name: str
    kind: str
    categories: tuple[str, ...] = ("All Responses",)


@dataclass(frozen=True)
class FlowSpec:
    """One flow of the workspace. ``week`` (1-based) marks a weekly show flow; None marks a survey."""

    name: str
    results: tuple[ResultSpec, ...]
    week: int | None = None


_YES_NO_CATEGORIES = ("Yes", "No", "Other", "Stop")

CSAP_FLOWS: tuple[FlowSpec, ...] = (
    *(
        FlowSpec(
            f"csap_s01e0{n}_activation",
            (ResultSpec(f"rqa_s01e0{n}", f"Rqa S01E0{n}", "rqa", ("All Responses", "Stop")),),
            week=n,
        )
        for n in (1, 2, 3, 4)
    ),
    FlowSpec(
        "csap_demog",
        (
            ResultSpec("gender", "Gender", "gender", ("Male", "Female", "Other", "Stop")),
            ResultSpec("mog_sub_district", "Mog Sub District", "location", ("All Responses", "Stop")),
            ResultSpec("age", "Age", "age", ("Has Number", "Other", "Stop")),
            ResultSpec("idp_camp", "Idp Camp", "yes_no", _YES_NO_CATEGORIES),
            ResultSpec("recently_displaced", "Recently Displaced", "yes_no", _YES_NO_CATEGORIES),
            ResultSpec("hh_language", "Hh Language", "language", ("All Responses", "Stop")),
        ),
    ),
    FlowSpec(
        "csap_evaluation",
        (
            ResultSpec("repeated", "Repeated", "yes_no", _YES_NO_CATEGORIES),
            ResultSpec("involved", "Involved", "yes_no", _YES_NO_CATEGORIES),
        ),
    ),
)
"""The six flows of the REDSS/CSAP series (datasets-and-codebook.md section 1)."""

CSAP_TEST_CONTACT_UUIDS: tuple[str, ...] = (
    "6f251195-5889-437a-a8b5-ad74b8e4eb62",
    "ed65f87f-4805-42ad-9b66-27f34c81c4ff",
)
"""The contacts of staff phones that the shipped configuration lists as test contacts."""


def _eat(month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, year: int = 2018) -> int:
    """Microseconds since the epoch of a wall-clock time in East Africa Time."""
    moment = datetime(year, month, day, hour, minute, second, tzinfo=EAT)
    return int((moment - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds()) * _SECOND


PROJECT_START = _eat(12, 2)
"""2018-12-02T00:00:00+03:00 as microseconds since the epoch (pipeline.md 7.4)."""
PROJECT_END = _eat(12, 31)
"""2018-12-31T00:00:00+03:00 as microseconds since the epoch (pipeline.md 7.4)."""

# Operational corrections (pipeline.md 7.3.2): the week-3 change-over instant and the two January bursts.
_C2_CHANGEOVER = _eat(12, 23)
_C3_BURST = (_eat(1, 17, 12, 3, 11, year=2019), _eat(1, 17, 12, 24, 42, year=2019))
_C4_BURST = (_eat(1, 12, 9, 45, 12, year=2019), _eat(1, 12, 9, 51, 57, year=2019))

# Every start and end of the channel and participation windows (pipeline.md section 8), all 2018 EAT.
_CHANNEL_BOUNDARIES = tuple(
    sorted(
        {
            _eat(12, 2, 19, 25, 19), _eat(12, 9, 19, 0, 30), _eat(12, 16, 19, 0, 55), _eat(12, 23, 19, 0, 45),
            *(_eat(12, d) for d in (2, 3, 5, 6, 7, 9, 10, 12, 13, 14, 16, 17, 19, 20, 21, 23, 24, 26, 27, 28, 31)),
        }
    )
)


def format_timestamp(us: int) -> str:
    """Renders microseconds since the epoch as the API does: UTC, six fraction digits, ``Z``.

    One fixed format means the strings sort like the instants, which the indexes rely on. (Formatting by
    hand, with the date and minute of each distinct minute rendered once, is what lets 100,000 runs be
    generated in a few seconds.)
    """
    minute, rest = divmod(us, _MINUTE)
    seconds, fraction = divmod(rest, _SECOND)
    return f"{_minute_text(minute)}:{seconds:02d}.{fraction:06d}Z"


@functools.lru_cache(maxsize=1 << 16)
def _minute_text(minute: int) -> str:
    """``YYYY-MM-DDTHH:MM`` of a minute counted from the epoch (a pure function of its value, so memoised)."""
    return (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M")


def parse_timestamp(value: str | datetime) -> int:
    """Reads an ISO 8601 timestamp (``Z``, any offset, or a bare date meaning UTC midnight) or an aware
    datetime into microseconds since the epoch. Raises ValueError for anything else."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * _SECOND + delta.microseconds


# ---------------------------------------------------------------------------------------------------------------
# Answer banks. Texts follow the cleaners' examples (cleaners.md sections 2-8) so that every auto-coder and the
# noise rule meet the cases they were written for, in the spellings listeners actually used.
# ---------------------------------------------------------------------------------------------------------------

_RQA_BANKS: dict[int, tuple[str, ...]] = {
    1: (
        "Waxaa loo baahan yahay in carruurta barakacayaasha la siiyo waxbarasho",
        "biyo nadiif ah ayay u baahan yihiin dadka barakacayaasha ah",
        "in la dhiso isbitaalo iyo xarumo caafimaad oo xeryaha ku yaala",
        "dowladu waa inay taageerto bulshada martida loo yahay",
        "shaqo abuur dhalinyarada iyo haweenka",
        "in dadka la siiyo dhul ay ku noolaadaan",
        "nabad iyo amni ayaa ugu muhiimsan",
        "in ay ku laabtaan deegaankoodii hore",
        "guryo loo dhiso barakacayaasha",
        "tababar xirfadeed haweenka iyo dhalinyarada",
        "gargaar cunto iyo lacag caddaan ah",
        "in gargaarka si caddaalad ah loo qaybiyo",
        "guddiyo laga sameeyo arrimaha barakaca",
        "bulshada ha lala tashado marka go'aan la gaarayo",
        "nadaafadda xeryaha waa in la hagaajiyaa",
        "waan ku raacsanahay",
        "nabad iyo horumar",
        "jobs for youth",
        "They need shelter and clean water",
        "give them land to build houses",
        "education for the children in the camps",
        "the government should help them go back home",
        "hello there",
        "lacag ha loo ururiyo sida qaxooti caawin",
        "in hal meel la dejiyo oo aan la kala firdhin",
    ),
    2: (
        "waa in la dhex geeyo bulshada maxaa yeelay waa walaalaheen",
        "diinteena ayaa na fareysa inaan soo dhaweyno",
        "waxay ka yimaadeen meel baahi ah waa in la caawiyo",
        "waa inay ku noqdaan miyiga maxaa yeelay waa beeraley iyo xoolo dhaqato",
        "cudurro ayay la yimaadaan waa in meel kale la geeyo",
        "cadaadis ayay ku hayaan adeegyada magaalada",
        "they are Somalis like us, we share one identity",
        "integration makes the community stronger",
        "they should be given jobs here in town",
        "baahidooda waxaa lagu daboolayaa miyiga",
        "dowladdu ha si wanaagsan u habeysanto",
        "haa in la dhex geeyo bulshada",
        "la tashi ha lala sameeyo iyaga",
        "waa in ay ku laabtaan meeshii ay ka yimaadeen",
    ),
    3: (
        "haa waa la takooraa xagga waxbarashada",
        "maya lama takooro waa muwaadiniin",
        "haa shaqada lagama siiyo",
        "bulshada ayaa isu haysata inay ka sarreeyaan",
        "dowladda ayaa takoorta barakacayaasha",
        "hay'adaha ayaa kala eexda gargaarka",
        "no, we are all Muslims",
        "yes they are denied health care",
        "maya, waa isku dal iyo isku dad",
        "haa guryaha ayaa laga saaraa",
        "xuquuqdooda waa la xadgudbaa",
        "ma jiraan barakacayaal deegaankeena",
        "waxay mudan yihiin in la caawiyo",
        "isdhexgal la'aan ayaa keenta takoorka",
    ),
    4: (
        "in loo dhiso guryo joogto ah",
        "dhul in la siiyo oo lagu wareejiyo",
        "in meesha ay hadda joogaan loo ogolaado",
        "dowlad wanaagsan ayaa xal u ah",
        "sinnaan la'aanta in la la dagaallamo",
        "guddi loo sameeyo arrintan",
        "caddaalad iyo garsoor wanaagsan",
        "in loo celiyo deegaankoodii ama meel kale la dejiyo",
        "build them houses",
        "good governance and justice",
        "nabad iyo ammaan",
        "diinta ayaa xal u ah",
    ),
}

_NOISE = (
    "ok", "Ok!", "OKEY", "asc", "kalkaal", "Mahad sanid", "In sha Allah", "330", "Hello!!", "thanks", "xx",
    "a", "dal dhis", "!!!", "short", "i agree", "ok thanks", "haa", "maya", "m", "25", "to", "go to it",
    "mogadishu", "Kaalkaal", "inshallah", "hi", "tir tir", "Ok", "asc ok", "",
)
_STOP = ("STOP", "stop", "Stop", "jooji", "JOOJI", "stop sending me messages")
_TEST_TEXTS = ("test", "Test message", "testing 123", "TEST s01", "tijaabo")
_GREETINGS = ("Asc ", "Salaan, ", "Asalaamu calaykum ", "ASC ", "Hi ")
_SIGN_OFFS = (" mahadsanid", " thanks", "!!", ". Hodan, Mogadishu", " waa ii Baidoa", " Muqdisho")

_GENDER = (
    ("male", "Male"), ("Female", "Female"), ("M", "Male"), ("F", "Female"), ("man", "Male"),
    ("woman", "Female"), ("boy", "Male"), ("girl", "Female"), ("lab", "Male"), ("Labood", "Male"),
    ("rag", "Male"), ("wiil", "Male"), ("dhedig", "Female"), ("Dheddig", "Female"), ("naag", "Female"),
    ("gabar", "Female"), ("hooyo", "Female"), ("I am a woman", "Female"), ("xasan", "Male"), ("25", "Other"),
    ("haa", "Other"), ("Lab", "Male"), ("Dhedig", "Female"), ("nin", "Male"), ("dumar", "Female"),
    ("Male ", "Male"), ("aniga waa lab", "Male"), ("waxaan ahay naag", "Female"),
)
_LOCATIONS = (
    "hodan", "Hodon", "wadajir", "Medina", "dayniile", "karaan", "Xamar Weyne", "yaqshid", "Huriwa", "waberi",
    "Boondheere", "Abdiaziz", "wardhigley", "jabjab", "Hodan, Mogadishu", "Mogadishu", "Muqdisho", "xamar",
    "Hargeisa", "Baidoa", "Kismayo", "Garowe", "Galkayo", "Bosaso", "Beledweyne", "Afgooye", "Dhusamareeb",
    "Adado", "Beled hawo", "Laascaanood", "Las Anod", "nairobi", "town", "Dharkenley", "dharkeynley",
    "Shibis", "shangaani", "Hawl wadaag", "holwadag", "Kaaraan", "heliwaa", "Waaberi", "degmada hodan",
    "Yaaqshiid", "dayniile muqdisho", "Wadajir, Mogadishu", "Kismaayo", "Afgoye",
)
_AGE_WORDS = (
    "sagaal i towan", "labatad iyo satax sano", "sodon iyo afar sano", "toban iyo sideed", "sideed iyo toban",
    "toban iyo kow", "lix iyo labaatan", "sodon iyo shan", "konton iyo laba", "lixdan", "sagaashan",
    "thirteen", "2O", "I5", "3o", "11", "89", "10", "90", "95", "I am 95", "9", "100", "1990", "2 5",
    "lix iyo lawatan", "sodon jir", "labaatan", "labaatan iyo shan", "afartan", "afartan iyo shan",
    "fifty five", "fifteen", "toban", "sixty", "labaatan iyo bar", "17 and 18",
)
_AGE_TEMPLATES = ("{n}", "{n}", "{n}", "I am {n} years", "{n} sano", "{n} jir", "da'daydu waa {n}", "{n} years")
_YES_NO = (
    ("haa", "Yes"), ("Yes", "Yes"), ("yes please", "Yes"), ("xaa", "Yes"), ("haa waan ahay", "Yes"),
    ("maya", "No"), ("No", "No"), ("mayo", "No"), ("may be", "Other"), ("no thanks", "No"),
    ("haa maya", "Other"), ("hye", "Other"), ("ok", "Other"), ("I am not sure", "Other"), ("Haa", "Yes"),
    ("Maya", "No"), ("haa waan maqlay", "Yes"), ("maya ma maqlin", "No"), ("haa, waan ka qayb qaatay", "Yes"),
)
_LANGUAGES = (
    "Somali", "somali", "Af Soomaali", "af-soomaali", "Soomaali", "Af maay", "maay maay", "English",
    "Arabic", "Carabi", "Swahili", "af maxaa iyo af maay", "Somali and English", "soomaali",
)
_GENERIC = ("haa", "maya", "ok", "waan ku raacsanahay", "I don't know", "ma garanayo")
_GIVEN_NAMES = (
    "Hodan", "Axmed", "Cali", "Fartun", "Nimco", "Deeqo", "Xasan", "Maryan", "Cabdi", "Faadumo", "Yuusuf",
    "Sahra", "Muxumed", "Ayaan", "Ismaaciil", "Khadra", "Ruqiya", "Bashiir", "Hibo", "Cumar",
)
_LANGUAGE_CODES = ("som", "som", "som", "som", "som", "som", "eng", None, None)

# Somali operator prefixes (cleaners.md section 10) with rough shares; 91 has no operator (codes NC).
_SOMALI_PREFIXES = (
    ("61", 38), ("90", 15), ("63", 14), ("62", 5), ("65", 4), ("66", 4), ("68", 6), ("64", 5), ("67", 3),
    ("69", 3), ("91", 3),
)
# Ranges kept for fiction or documentation, so none of these can belong to anyone.
_FOREIGN_FORMATS = ("+25470000{n:04d}", "+25670000{n:04d}", "+447700900{n:03d}", "+1202555{n:04d}")


def _bank_entry(bank: Sequence[Any], rng: random.Random) -> tuple[str, str | None]:
    entry = bank[int(rng.random() * len(bank))]
    return (entry, None) if isinstance(entry, str) else entry


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (the same text ``uuid.UUID(int=..., version=4)`` gives)."""
    h = "%032x" % rng.getrandbits(128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


# ---------------------------------------------------------------------------------------------------------------
# Indexes
# ---------------------------------------------------------------------------------------------------------------


class _Index:
    """A sorted list of ``(modified_on, number)`` keys with removal by number: the server's ordering."""

    __slots__ = ("keys", "_key_of")

    def __init__(self, keys: Iterable[tuple[str, int]] = ()):
        self.keys = sorted(keys)
        self._key_of = {key[1]: key for key in self.keys}

    def put(self, key: tuple[str, int]) -> None:
        self.remove(key[1])
        bisect.insort(self.keys, key)
        self._key_of[key[1]] = key

    def remove(self, number: int) -> None:
        old = self._key_of.pop(number, None)
        if old is not None:
            del self.keys[bisect.bisect_left(self.keys, old)]

    def pop_range(self, low: str, high: str) -> list[tuple[str, int]]:
        """Removes and returns the keys whose first element lies in ``[low, high)``, in one slice."""
        start, stop = bisect.bisect_left(self.keys, (low,)), bisect.bisect_left(self.keys, (high,))
        popped = self.keys[start:stop]
        del self.keys[start:stop]
        for key in popped:
            del self._key_of[key[1]]
        return popped


def _select(
    keys: Sequence[tuple[Any, int]],
    lookup: Callable[[int], dict],
    *,
    after: Any = None,
    before: Any = None,
    reverse: bool = False,
    start_after: tuple[Any, int] | None = None,
    limit: int,
    predicate: Callable[[dict], bool] | None = None,
) -> tuple[list[dict], tuple[Any, int] | None]:
    """One page of ``keys`` newest first (oldest first with ``reverse``), ``after``/``before`` inclusive on the
    first key element, continuing behind ``start_after``. Returns the items and the key to continue from, or
    None when nothing follows. Costs two bisects plus the page, whatever the table size."""
    lo = 0 if after is None else bisect.bisect_left(keys, (after,))
    hi = len(keys) if before is None else bisect.bisect_left(keys, (before, float("inf")))
    if start_after is not None:
        if reverse:
            lo = max(lo, bisect.bisect_right(keys, tuple(start_after)))
        else:
            hi = min(hi, bisect.bisect_left(keys, tuple(start_after)))
    positions = range(lo, hi) if reverse else range(hi - 1, lo - 1, -1)
    page: list[dict] = []
    last_key = None
    for position in positions:
        key = keys[position]
        item = lookup(key[1])
        if predicate is not None and not predicate(item):
            continue
        if len(page) == limit:
            return page, last_key
        page.append(item)
        last_key = key
    return page, None


# ---------------------------------------------------------------------------------------------------------------
# The workspace
# ---------------------------------------------------------------------------------------------------------------


class Workspace:
    """A mutable, thread-safe Rapid Pro workspace holding API-shaped objects (plain JSON-ready dicts).

    Objects handed out are shared with the workspace: treat them as read-only. Mutations replace objects
    rather than change them, so a page that a server is serialising never sees half an update. Every public
    method takes ``lock``; the server holds it while it selects and serialises a page.
    """

    def __init__(
        self,
        *,
        seed: int,
        flows: Sequence[FlowSpec],
        test_contact_uuids: Sequence[str],
        shapes: str = SHAPES_SUPERSET,
        anonymous: str | None = None,
    ):
        if shapes not in SHAPES:
            raise WorkspaceError(f"shapes must be one of {', '.join(SHAPES)}, not {shapes!r}", field="shapes")
        if anonymous not in (None, *ANONYMOUS_MODES):
            raise WorkspaceError(f"anonymous must be one of {', '.join(ANONYMOUS_MODES)}", field="anonymous")
        self.lock = threading.RLock()
        self.seed = seed
        #: ``superset`` (every field every client version declares) or ``real`` (rapid-pro.md 6.4: what real
        #: servers send; see ``demo.api_shapes``). Decides how the server renders objects and archive lines.
        self.shapes = shapes
        #: None, or how an anonymous workspace hides URNs: ``masked`` (``tel:********``, today's servers) or
        #: ``empty`` (``urns: []``, 2019-era servers). ``org.json`` then says ``"anon": true``.
        self.anonymous = anonymous
        self.test_contact_uuids = tuple(test_contact_uuids)
        self._rng = random.Random(f"mutations-{seed}")
        self._flows: list[dict] = []
        self._flow_specs: dict[str, FlowSpec] = {}
        self._flow_by_name: dict[str, dict] = {}
        self._flow_by_uuid: dict[str, dict] = {}
        self._nodes: dict[str, dict[str, str]] = {}  # flow uuid -> result key (and "" for entry) -> node uuid
        self._runs: dict[int, dict] = {}
        self._run_id_by_uuid: dict[str, int] = {}
        self._run_index = _Index()
        self._flow_run_index: dict[str, _Index] = {}
        self._archived_run_ids: set[int] = set()
        self._archived_runs: list[dict] = []
        self._pending_runs: dict[str, list[dict]] = {}  # flow uuid -> runs stamped but not yet committed
        self._contacts: dict[int, dict] = {}
        self._deleted: dict[int, dict] = {}
        self._contact_number_by_uuid: dict[str, int] = {}
        self._contact_index = _Index()
        self._deleted_index = _Index()
        self._archives: list[dict] = []
        self._archive_keys: list[tuple[str, int]] = []
        self._archive_files: dict[str, bytes] = {}
        self._phone_numbers: set[str] = set()
        self._next_run_id = 1
        self._next_contact_number = 1
        self._clock = 0
        self._flow_counts_cache: dict[str, dict] | None = None
        self._group = {"uuid": _uuid(random.Random(f"group-{seed}")), "name": "CSAP Listeners"}
        self.org = {
            "uuid": _uuid(random.Random(f"org-{seed}")),
            "name": "CSAP (synthetic workspace)",
            "country": "SO",
            "languages": ["som", "eng"],
            "primary_language": "som",
            "timezone": "Africa/Mogadishu",
            "date_style": "day_first",
            "credits": {"used": 0, "remaining": 1000000},
            "anon": anonymous is not None,
        }
        self.fields = [
            {"key": key, "label": label, "name": label, "value_type": "text", "type": "text"}
            for key, label in (
                ("gender", "Gender"), ("age", "Age"), ("district", "District"),
                ("household_language", "Household Language"),
            )
        ]
        for spec in flows:
            self._add_flow(spec)

    # -- flows ----------------------------------------------------------------------------------------------

    def _add_flow(self, spec: FlowSpec) -> None:
        rng = random.Random(f"flow-{self.seed}-{spec.name}")
        flow_uuid = _uuid(rng)
        nodes = {"": _uuid(rng)}
        results = []
        for result in spec.results:
            nodes[result.key] = _uuid(rng)
            results.append(
                {
                    "key": result.key,
                    "name": result.name,
                    "categories": list(result.categories),
                    "node_uuids": [nodes[result.key]],
                }
            )
        created = format_timestamp(_eat(11, 20) + int(rng.random() * 5 * _DAY))
        flow = {
            "uuid": flow_uuid,
            "name": spec.name,
            "type": "message",
            "archived": False,
            "labels": [{"uuid": _uuid(rng), "name": "CSAP"}],
            "expires": 10080,
            "runs": {},
            "results": results,
            "parent_refs": [],
            "created_on": created,
            "modified_on": created,
        }
        self._flows.append(flow)
        self._flow_specs[flow_uuid] = spec
        self._flow_by_name[spec.name] = flow
        self._flow_by_uuid[flow_uuid] = flow
        self._nodes[flow_uuid] = nodes
        self._flow_run_index[flow_uuid] = _Index()

    def flows(self) -> list[dict]:
        """Every flow as ``flows.json`` serves it, with current run counts by exit type."""
        with self.lock:
            if self._flow_counts_cache is None:
                kinds: tuple[str, ...] = ("active", "completed", "interrupted", "expired")
                if self.shapes == SHAPES_REAL:
                    kinds += ("waiting", "failed")  # newer servers count these too
                counts = {f["uuid"]: dict.fromkeys(kinds, 0) for f in self._flows}
                for run in self._runs.values():
                    counts[run["flow"]["uuid"]][run["exit_type"] or "active"] += 1
                self._flow_counts_cache = counts
            return [dict(flow, runs=dict(self._flow_counts_cache[flow["uuid"]])) for flow in self._flows]

    def flow(self, name_or_uuid: str) -> dict:
        """The flow of that name or UUID (as served, without run counts)."""
        with self.lock:
            flow = self._flow_by_name.get(name_or_uuid) or self._flow_by_uuid.get(name_or_uuid)
            if flow is None:
                raise WorkspaceError(f"no flow named {name_or_uuid!r}", field="flow")
            return flow

    # -- reading -------------------------------------------------------------------------------------------

    def runs(self, *, flow: str | None = None) -> list[dict]:
        """The live (not archived) runs, oldest ``modified_on`` first, optionally of one flow (name or UUID)."""
        with self.lock:
            index = self._run_index if flow is None else self._flow_run_index[self.flow(flow)["uuid"]]
            return [self._runs[number] for _, number in index.keys]

    def archived_runs(self) -> list[dict]:
        """Every run moved to an archive, in the form the archive files hold."""
        with self.lock:
            return list(self._archived_runs)

    def run(self, run: int | str) -> dict:
        """A live run by integer id or UUID."""
        with self.lock:
            return self._runs[self._live_run_id(run)]

    def contacts(self) -> list[dict]:
        """The live contacts, oldest ``modified_on`` first."""
        with self.lock:
            return [self._contacts[number] for _, number in self._contact_index.keys]

    def deleted_contacts(self) -> list[dict]:
        """The deleted contacts as ``contacts.json?deleted=true`` serves them (fields emptied)."""
        with self.lock:
            return [self._deleted[number] for _, number in self._deleted_index.keys]

    def contact(self, contact_uuid: str) -> dict:
        """A live contact by UUID."""
        with self.lock:
            number = self._contact_number_by_uuid.get(contact_uuid)
            if number is None or number not in self._contacts:
                raise WorkspaceError(f"no live contact {contact_uuid}", field="contact")
            return self._contacts[number]

    def contact_or_none(self, contact_uuid: str) -> dict | None:
        """A live contact by UUID, or None (deleted or unknown): what a run's ``contact`` can show."""
        with self.lock:
            return self._contacts.get(self._contact_number_by_uuid.get(contact_uuid, -1))

    def archives(self) -> list[dict]:
        """Every archive's metadata, oldest ``start_date`` first; ``file`` names the file for
        ``archive_file`` (the server turns it into ``download_url``)."""
        with self.lock:
            return [self._archives[number] for _, number in self._archive_keys]

    def archive_file(self, name: str) -> bytes | None:
        """The gzipped JSON Lines content of an archive file, or None for an unknown name."""
        with self.lock:
            return self._archive_files.get(name)

    def phone_numbers(self) -> list[str]:
        """Every phone number the workspace ever held (``tel:`` URN paths, e.g. ``+25261...``), including
        those of deleted contacts and replaced URNs: the list a de-identification scan looks for."""
        with self.lock:
            return sorted(self._phone_numbers)

    def now(self) -> float:
        """The workspace clock as epoch seconds: the server's time for a workspace that is "on air"."""
        with self.lock:
            return self._clock / _SECOND

    @property
    def clock(self) -> str:
        """The latest timestamp in the workspace; mutations without explicit times happen after it."""
        with self.lock:
            return format_timestamp(self._clock)

    # -- selections for the server (keyset pages) ------------------------------------------------------------

    def select_runs(
        self,
        *,
        flow: str | None = None,
        uuid: str | None = None,
        run_id: int | None = None,
        contact: str | None = None,
        responded: bool | None = None,
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        start_after: tuple[str, int] | None = None,
        limit: int,
    ) -> tuple[list[dict], tuple[str, int] | None]:
        """One page of live runs in API order; see ``_select``. ``flow`` is a flow UUID (unknown -> empty)."""
        with self.lock:
            if uuid is not None or run_id is not None:
                number = self._run_id_by_uuid.get(uuid) if uuid is not None else run_id
                run = self._runs.get(number) if number is not None else None
                if run is None or (uuid is not None and run_id is not None and run["id"] != run_id):
                    keys = []
                else:
                    keys = [(run["modified_on"], run["id"])]
            elif flow is not None:
                index = self._flow_run_index.get(flow)
                keys = index.keys if index is not None else []
            else:
                keys = self._run_index.keys
            checks = []
            if flow is not None and (uuid is not None or run_id is not None):
                checks.append(lambda r: r["flow"]["uuid"] == flow)
            if contact is not None:
                checks.append(lambda r: r["contact"]["uuid"] == contact)
            if responded is not None:
                checks.append(lambda r: r["responded"] == responded)
            predicate = (lambda r: all(check(r) for check in checks)) if checks else None
            return _select(keys, self._runs.__getitem__, after=after, before=before, reverse=reverse,
                           start_after=start_after, limit=limit, predicate=predicate)

    def select_contacts(
        self,
        *,
        deleted: bool = False,
        uuid: str | None = None,
        urn: str | None = None,
        group: str | None = None,
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        start_after: tuple[str, int] | None = None,
        limit: int,
    ) -> tuple[list[dict], tuple[str, int] | None]:
        """One page of live (or, with ``deleted``, deleted) contacts in API order."""
        with self.lock:
            table, index = (self._deleted, self._deleted_index) if deleted else (self._contacts, self._contact_index)
            keys: Sequence[tuple[str, int]] = index.keys
            if uuid is not None:
                number = self._contact_number_by_uuid.get(uuid)
                keys = [(table[number]["modified_on"], number)] if number in table else []
            checks = []
            if urn is not None:
                checks.append(lambda c: urn in c["urns"])
            if group is not None:
                checks.append(lambda c: any(group in (g["uuid"], g["name"]) for g in c["groups"]))
            predicate = (lambda c: all(check(c) for check in checks)) if checks else None
            return _select(keys, table.__getitem__, after=after, before=before, reverse=reverse,
                           start_after=start_after, limit=limit, predicate=predicate)

    def select_archives(
        self,
        *,
        archive_type: str | None = None,
        period: str | None = None,
        after: str | None = None,
        before: str | None = None,
        reverse: bool = False,
        start_after: tuple[str, int] | None = None,
        limit: int,
    ) -> tuple[list[dict], tuple[str, int] | None]:
        """One page of archives, newest ``start_date`` first; ``after``/``before`` compare ``start_date``."""
        with self.lock:
            checks = []
            if archive_type is not None:
                checks.append(lambda a: a["type"] == archive_type)
            if period is not None:
                checks.append(lambda a: a["period"] == period)
            predicate = (lambda a: all(check(a) for check in checks)) if checks else None
            return _select(self._archive_keys, self._archives.__getitem__,
                           after=None if after is None else after[:10],
                           before=None if before is None else before[:10], reverse=reverse,
                           start_after=start_after, limit=limit, predicate=predicate)

    # -- mutations -----------------------------------------------------------------------------------------

    def add_run(
        self,
        *,
        flow: str,
        contact: str,
        answers: Mapping[str, str] | None = None,
        time: str | datetime | None = None,
        modified_on: str | datetime | None = None,
        exit_type: str | None = "completed",
    ) -> dict:
        """Adds a run of ``flow`` (name or UUID) for a live contact, answering ``answers`` (result key ->
        the text the contact sent) one minute apart from ``time`` (default: just after the workspace clock).
        ``modified_on`` defaults to after both the last answer and the workspace clock, so even a late
        delivery with an old ``time`` is seen by an incremental fetch. ``exit_type`` None leaves the run
        active. Returns the new run."""
        with self.lock:
            flow_obj = self.flow(flow)
            contact_obj = self.contact(contact)
            start = self._tick() if time is None else parse_timestamp(time)
            created = start - 5 * _SECOND
            answer_list = [
                (self._result_spec(flow_obj, key), text, start + i * _MINUTE)
                for i, (key, text) in enumerate((answers or {}).items())
            ]
            last = answer_list[-1][2] if answer_list else created
            if modified_on is None:
                modified = max(last + 200_000, self._clock + _SECOND)
            else:
                modified = parse_timestamp(modified_on)
            run = self._build_run(
                run_id=self._next_run_id, run_uuid=_uuid(self._rng), flow=flow_obj,
                contact=contact_obj, start_uuid=None, created=created, answers=answer_list,
                modified=modified, exited=None if exit_type is None else modified, exit_type=exit_type,
            )
            self._next_run_id += 1
            self._store_run(run)
            return run

    def modify_run(
        self,
        run: int | str,
        *,
        answers: Mapping[str, str] | None = None,
        modified_on: str | datetime | None = None,
        exit_type: str | None = "completed",
    ) -> dict:
        """Gives a live run (id or UUID) more or changed answers and a later ``modified_on`` (default: just
        after the workspace clock), as when a contact answers again. Returns the new version of the run."""
        with self.lock:
            old = self._runs[self._live_run_id(run)]
            modified = self._tick() if modified_on is None else parse_timestamp(modified_on)
            flow_obj = self._flow_by_uuid[old["flow"]["uuid"]]
            values = dict(old["values"])
            path = list(old["path"])
            answers = answers or {}
            for i, (key, text) in enumerate(answers.items()):
                answered = modified - (len(answers) - i) * _SECOND
                values[key] = self._value(flow_obj, self._result_spec(flow_obj, key), text, answered)
                path.append({"node": values[key]["node"], "time": format_timestamp(answered)})
            new = dict(
                old,
                values=values,
                path=path,
                responded=bool(values),
                modified_on=format_timestamp(modified),
                exited_on=None if exit_type is None else format_timestamp(modified),
                exit_type=exit_type,
            )
            self._store_run(new)
            return new

    def add_contact(
        self,
        *,
        urns: Sequence[str],
        name: str | None = None,
        uuid: str | None = None,
        language: str | None = "som",
        modified_on: str | datetime | None = None,
    ) -> dict:
        """Adds a live contact (a new UUID unless given) and returns it."""
        with self.lock:
            contact_uuid = uuid or _uuid(self._rng)
            if contact_uuid in self._contact_number_by_uuid:
                raise WorkspaceError(f"contact {contact_uuid} exists already", field="uuid")
            moment = self._tick() if modified_on is None else parse_timestamp(modified_on)
            contact = self._build_contact(
                contact_uuid=contact_uuid, name=name, language=language, urns=list(urns),
                created=moment, modified=moment, last_seen=None, stopped=False, fields={},
            )
            self._store_contact(self._next_contact_number, contact)
            self._next_contact_number += 1
            return contact

    def set_contact_urns(
        self, contact: str, urns: Sequence[str], *, modified_on: str | datetime | None = None
    ) -> dict:
        """Replaces a live contact's URNs (first = preferred) and bumps its ``modified_on``."""
        with self.lock:
            old = self.contact(contact)
            moment = self._tick() if modified_on is None else parse_timestamp(modified_on)
            new = dict(old, urns=list(urns), modified_on=format_timestamp(moment))
            self._store_contact(self._contact_number_by_uuid[contact], new)
            return new

    def delete_contact(self, contact: str, *, modified_on: str | datetime | None = None) -> dict:
        """Deletes a live contact: ``contacts.json`` stops returning it and ``contacts.json?deleted=true``
        returns it with name, URNs, groups and fields emptied. Its runs stay, as Rapid Pro kept them when the
        2019 pipeline ran. Returns the deleted form."""
        with self.lock:
            old = self.contact(contact)
            number = self._contact_number_by_uuid[contact]
            moment = self._tick() if modified_on is None else parse_timestamp(modified_on)
            deleted = dict(
                old, name=None, language=None, urns=[], groups=[], fields={}, blocked=None, stopped=None,
                status=None, flow=None, modified_on=format_timestamp(moment),
            )
            del self._contacts[number]
            self._contact_index.remove(number)
            self._deleted[number] = deleted
            self._deleted_index.put((deleted["modified_on"], number))
            return deleted

    def archive_runs(self, *, period: str, start_date: date | str) -> dict:
        """Moves every live run modified within the day or month (``period`` ``daily``/``monthly``) that
        starts at ``start_date`` into a new run archive, as Rapid Pro does after its retention period.
        Returns the archive's metadata."""
        with self.lock:
            start = start_date if isinstance(start_date, date) else date.fromisoformat(start_date)
            if period == "monthly" and start.day != 1:
                raise WorkspaceError("a monthly archive starts on the first of a month", field="start_date")
            if period not in ("daily", "monthly"):
                raise WorkspaceError(f"period must be daily or monthly, not {period!r}", field="period")
            for existing in self._archives:
                if existing["type"] == "run" and (existing["period"], existing["start_date"]) == (period, start.isoformat()):
                    raise WorkspaceError(f"a {period} run archive for {start} exists already", field="start_date")
            end = _period_end(start, period)
            low, high = f"{start.isoformat()}T", f"{end.isoformat()}T"
            moved = [self._runs.pop(number) for _, number in self._run_index.pop_range(low, high)]
            for index in self._flow_run_index.values():
                index.pop_range(low, high)
            self._archived_run_ids.update(run["id"] for run in moved)
            self._flow_counts_cache = None
            return self._add_archive("run", period, start, sorted(moved, key=lambda r: r["id"]),
                                     drop_start=period == "monthly")

    def add_late_run(self, *, flow: str, contact: str, answers: Mapping[str, str] | None = None) -> dict:
        """A late commit, as when a show is on air: a run of ``contact`` stamped now (just after the workspace
        clock) is committed at once, and a second one stamped 54 ms earlier is held back: ``runs.json`` does
        not return it until ``commit_late_runs`` (Rapid Pro stamps ``modified_on`` before the row commits, so
        a fetch can read past a run that appears later). Returns the held-back run."""
        with self.lock:
            seen = self.add_run(flow=flow, contact=contact, answers=answers)
            flow_obj = self.flow(flow)
            moment = parse_timestamp(seen["modified_on"]) - 54_000
            answer_list = [
                (self._result_spec(flow_obj, key), text, moment - (len(answers or {}) - i) * _SECOND)
                for i, (key, text) in enumerate((answers or {}).items())
            ]
            run = self._build_run(
                run_id=self._next_run_id, run_uuid=_uuid(self._rng), flow=flow_obj, contact=self.contact(contact),
                start_uuid=None, created=moment - 10 * _SECOND, answers=answer_list, modified=moment,
                exited=moment, exit_type="completed",
            )
            self._next_run_id += 1
            self._pending_runs.setdefault(flow_obj["uuid"], []).append(run)
            return run

    def pending_flows(self) -> list[str]:
        """UUIDs of the flows with runs stamped but not committed."""
        with self.lock:
            return [flow for flow, runs in self._pending_runs.items() if runs]

    def commit_late_runs(self, flow: str | None = None) -> list[dict]:
        """Commits the late runs (of one flow, name or UUID, or of all): ``runs.json`` returns them from now
        on, with the ``modified_on`` they were stamped with."""
        with self.lock:
            flows = list(self._pending_runs) if flow is None else [self.flow(flow)["uuid"]]
            committed = []
            for flow_uuid in flows:
                for run in self._pending_runs.pop(flow_uuid, []):
                    self._store_run(run)
                    committed.append(run)
            return committed

    def remove_archive_file(self, *, period: str, start_date: str) -> dict:
        """Takes the file away from a run archive (its listing then gives an empty ``download_url``, as Rapid
        Pro does when there is no file). Returns the archive."""
        with self.lock:
            archive = self._run_archive(period, start_date)
            new = dict(archive, file=None)
            self._archives[self._archives.index(archive)] = new
            return new

    def roll_up_month(self, month: str) -> dict:
        """Replaces the daily run archives of ``month`` (``2018-12``) by one monthly archive holding the same
        runs under a new hash, as Rapid Pro's archiver does. Returns the monthly archive."""
        with self.lock:
            start = date.fromisoformat(f"{month}-01")
            dailies = [a for a in self._archives if a["type"] == "run" and a["period"] == "daily"
                       and a["start_date"].startswith(month)]
            if not dailies:
                raise WorkspaceError(f"no daily run archives in {month}", field="month")
            runs: list[dict] = []
            for archive in dailies:
                content = self._archive_files.pop(archive["file"], None) if archive.get("file") else None
                if content:
                    runs.extend(json.loads(line) for line in gzip.decompress(content).splitlines() if line.strip())
            self._archives = [a for a in self._archives if not any(a is d for d in dailies)]
            self._archive_keys = sorted((a["start_date"], n) for n, a in enumerate(self._archives))
            return self._add_archive("run", "monthly", start, runs, encoded=True)

    def _run_archive(self, period: str, start_date: str) -> dict:
        for archive in self._archives:
            if (archive["type"], archive["period"], archive["start_date"]) == ("run", period, start_date):
                return archive
        raise WorkspaceError(f"no {period} run archive of {start_date}", field="start_date")

    # -- internals ----------------------------------------------------------------------------------------

    def _tick(self) -> int:
        self._clock += _SECOND
        return self._clock

    def _see(self, moment: int) -> None:
        if moment > self._clock:
            self._clock = moment

    def _live_run_id(self, run: int | str) -> int:
        number = self._run_id_by_uuid.get(run) if isinstance(run, str) else run
        if number is None or number not in self._runs:
            where = "archived" if number in self._archived_run_ids else "unknown"
            raise WorkspaceError(f"run {run} is {where}; only live runs can be read or changed", record=run)
        return number

    def _result_spec(self, flow: dict, key: str) -> ResultSpec:
        for result in self._flow_specs[flow["uuid"]].results:
            if result.key == key:
                return result
        raise WorkspaceError(f"flow {flow['name']} has no result {key!r}", field=key)

    def _value(self, flow: dict, result: ResultSpec, text: str, moment: int) -> dict:
        return {
            "value": text.strip(),
            "category": _categorise(result, text),
            "node": self._nodes[flow["uuid"]][result.key],
            "time": format_timestamp(moment),
            "input": text,
            "name": result.name,
        }

    def _build_run(
        self,
        *,
        run_id: int,
        run_uuid: str,
        flow: dict,
        contact: dict,
        start_uuid: str | None,
        created: int,
        answers: Sequence[tuple[ResultSpec, str, int]],
        modified: int,
        exited: int | None,
        exit_type: str | None,
    ) -> dict:
        nodes = self._nodes[flow["uuid"]]
        created_on = format_timestamp(created)
        modified_on = format_timestamp(modified)
        path = [{"node": nodes[""], "time": created_on}]
        values = {}
        for result, text, moment in answers:
            value = values[result.key] = self._value(flow, result, text, moment)
            path.append({"node": value["node"], "time": value["time"]})
        return {
            "id": run_id,
            "uuid": run_uuid,
            "flow": {"uuid": flow["uuid"], "name": flow["name"]},
            "contact": {"uuid": contact["uuid"], "name": contact["name"]},
            "start": None if start_uuid is None else {"uuid": start_uuid},
            "responded": bool(values),
            "path": path,
            "values": values,
            "created_on": created_on,
            "modified_on": modified_on,
            "exited_on": None if exited is None else (modified_on if exited == modified else format_timestamp(exited)),
            "exit_type": exit_type,
        }

    def _store_run(self, run: dict) -> None:
        number = run["id"]
        key = (run["modified_on"], number)
        self._runs[number] = run
        self._run_id_by_uuid[run["uuid"]] = number
        self._run_index.put(key)
        self._flow_run_index[run["flow"]["uuid"]].put(key)
        self._flow_counts_cache = None
        self._see(parse_timestamp(run["modified_on"]))

    def _build_contact(
        self,
        *,
        contact_uuid: str,
        name: str | None,
        language: str | None,
        urns: list[str],
        created: int,
        modified: int,
        last_seen: int | None,
        stopped: bool,
        fields: Mapping[str, str | None],
    ) -> dict:
        return {
            "uuid": contact_uuid,
            "name": name,
            "language": language,
            "urns": urns,
            "groups": [dict(self._group)],
            "fields": {f["key"]: fields.get(f["key"]) for f in self.fields},
            "blocked": False,
            "stopped": stopped,
            "status": "stopped" if stopped else "active",
            "flow": None,
            "created_on": format_timestamp(created),
            "modified_on": format_timestamp(modified),
            "last_seen_on": None if last_seen is None else format_timestamp(last_seen),
        }

    def _store_contact(self, number: int, contact: dict, *, index: bool = True) -> None:
        self._contacts[number] = contact
        self._contact_number_by_uuid[contact["uuid"]] = number
        if index:
            self._contact_index.put((contact["modified_on"], number))
        for urn in contact["urns"]:
            if urn.startswith("tel:"):
                self._phone_numbers.add(urn[4:])
            elif urn.startswith("whatsapp:"):
                self._phone_numbers.add("+" + urn[len("whatsapp:"):])
        self._see(parse_timestamp(contact["modified_on"]))

    def _add_archive(self, archive_type: str, period: str, start: date, records: Sequence[dict],
                     *, drop_start: bool = False, encoded: bool = False) -> dict:
        lines = []
        for record in records:
            if not encoded:
                if drop_start or self.shapes == SHAPES_REAL:
                    # Archives written by older servers lack "start"; readers must treat it as null.
                    record = {k: v for k, v in record.items() if k != "start"}
                if self.shapes == SHAPES_REAL and archive_type == "run":
                    record = _archive_line_shape(record, self)
            lines.append(json.dumps(record, separators=(",", ":")) + "\n")
        content = gzip.compress("".join(lines).encode("utf-8"), mtime=0)
        digest = hashlib.md5(content).hexdigest()
        name = f"{archive_type}_{period}_{start.isoformat()}_{digest[:12]}.jsonl.gz"
        number = len(self._archives)
        archive = {
            "type": archive_type,
            "archive_type": archive_type,
            "start_date": start.isoformat(),
            "period": period,
            "record_count": len(records),
            "size": len(content),
            "hash": digest,
            # Real servers write no file for an empty archive (its listing gives an empty download_url).
            "file": name if records or self.shapes != SHAPES_REAL else None,
        }
        self._archives.append(archive)
        bisect.insort(self._archive_keys, (start.isoformat(), number))
        self._archive_files[name] = content
        if archive_type == "run" and not encoded:
            self._archived_runs.extend(json.loads(line) for line in lines)
        return archive


def _archive_time(text: Any) -> Any:
    """An archive line's datetime: ``+00:00`` with the fraction's trailing zeros trimmed (``...:00.5+00:00``)."""
    if not isinstance(text, str) or not text.endswith("Z"):
        return text
    whole, _, fraction = text[:-1].partition(".")
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}+00:00" if fraction else f"{whole}+00:00"


def _archive_line_shape(run: dict, workspace: "Workspace") -> dict:
    """A run as Rapid Pro's archiver writes it (rapid-pro.md 6.4): datetimes in the archive form, the contact
    with its URN (masked in an anonymous workspace)."""
    line = dict(run)
    for key in ("created_on", "modified_on", "exited_on"):
        line[key] = _archive_time(run.get(key))
    line["values"] = {k: dict(v, time=_archive_time(v.get("time"))) for k, v in run["values"].items()}
    line["path"] = [dict(step, time=_archive_time(step.get("time"))) for step in run.get("path", [])]
    contact = dict(run["contact"])
    number = workspace._contact_number_by_uuid.get(contact["uuid"])
    urns = workspace._contacts[number]["urns"] if number in workspace._contacts else []
    if urns:
        contact["urn"] = _masked(urns[0]) if workspace.anonymous else urns[0]
    line["contact"] = contact
    return line


def _masked(urn: str) -> str:
    scheme, _, _ = urn.partition(":")
    return f"{scheme}:********"


def _period_end(start: date, period: str) -> date:
    if period == "daily":
        return start + timedelta(days=1)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


_BANK_CATEGORIES = {"gender": dict(_GENDER), "yes_no": dict(_YES_NO)}
_STOP_WORDS = frozenset(text.lower() for text in _STOP)


def _categorise(result: ResultSpec, text: str) -> str:
    """The category a typical CSAP flow rule would have given the answer."""
    if text.strip().lower() in _STOP_WORDS:
        return "Stop" if "Stop" in result.categories else result.categories[-1]
    categories = _BANK_CATEGORIES.get(result.kind)
    if categories is not None:
        return categories.get(text, "Other")
    if result.kind == "age":
        return "Has Number" if any(ch.isdigit() for ch in text) else "Other"
    return result.categories[0]


# ---------------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _ContactDraft:
    uuid: str
    name: str | None
    language: str | None
    urns: list[str]
    first: int | None = None
    last: int | None = None
    stopped_at: int | None = None
    fields: dict | None = None


class _Generator:
    """Builds the runs and contacts of one workspace; all randomness comes from one seeded generator."""

    def __init__(self, workspace: Workspace, rng: random.Random, size: int):
        self.ws = workspace
        self.rng = rng
        self.size = size
        self.drafts: list[_ContactDraft] = []
        self.runs: list[tuple[int, dict, _ContactDraft, dict]] = []  # (created, flow, contact, spec)
        self.prefix_counters: dict[str, int] = {}
        self.foreign_counter = 0
        self.show_flows = sorted((f for f in workspace._flows if workspace._flow_specs[f["uuid"]].week),
                                 key=lambda f: workspace._flow_specs[f["uuid"]].week or 0)  # all have a week
        self.survey_flows = [f for f in workspace._flows if not workspace._flow_specs[f["uuid"]].week]

    # -- contacts --------------------------------------------------------------------------------------------

    def somali_number(self) -> str:
        rng = self.rng
        pick = rng.random() * 100
        for prefix, share in _SOMALI_PREFIXES:  # noqa: B007 - the prefix the loop stops at is the one used
            pick -= share
            if pick < 0:
                break
        count = self.prefix_counters.get(prefix, 0) + 1
        self.prefix_counters[prefix] = count
        return f"+252{prefix}00{count:05d}"

    def foreign_number(self) -> str:
        self.foreign_counter += 1
        template = _FOREIGN_FORMATS[self.foreign_counter % len(_FOREIGN_FORMATS)]
        return template.format(n=self.foreign_counter)

    def make_contacts(self, count: int) -> None:
        rng = self.rng
        for i in range(count):
            roll = rng.random()
            handle = 100000000 + int(rng.random() * 800000000)
            if i % 97 == 50:
                urns = []  # a contact with no URN at all (skipped by the fetch)
            elif i % 43 == 11:
                # WhatsApp and SMS for one number; Rapid Pro puts the channel used last first.
                number = self.somali_number()
                urns = [f"whatsapp:{number[1:]}", f"tel:{number}"]
            elif i % 89 == 30:
                urns = [f"whatsapp:{self.somali_number()[1:]}"]
            elif i % 41 == 20:
                urns = [f"tel:{self.foreign_number()}"]
            elif roll < 0.03:
                urns = [f"tel:{self.somali_number()}", f"telegram:{handle}"]
            elif roll < 0.04:
                urns = [f"telegram:{handle}", f"tel:{self.somali_number()}"]
            elif roll < 0.045:
                urns = [f"twitter:listener{handle % 100000}"]
            elif roll < 0.05:
                urns = [f"twitter:listener{handle % 100000}", f"tel:{self.somali_number()}"]
            else:
                urns = [f"tel:{self.somali_number()}"]
            name = None
            if rng.random() < 0.7:
                name = f"{_GIVEN_NAMES[int(rng.random() * len(_GIVEN_NAMES))]} {chr(65 + int(rng.random() * 26))}."
            language = _LANGUAGE_CODES[int(rng.random() * len(_LANGUAGE_CODES))]
            self.drafts.append(_ContactDraft(_uuid(rng), name, language, urns))
        # The staff phones behind the configured test contacts.
        for n, contact_uuid in enumerate(self.ws.test_contact_uuids):
            self.drafts.append(_ContactDraft(contact_uuid, f"CSAP test phone {n + 1}", "som",
                                             [f"tel:+2526100{99990 + n:05d}"]))

    def pick_contact(self) -> _ContactDraft:
        # Skewed: a few listeners reply to every show, most reply once or twice.
        listeners = len(self.drafts) - len(self.ws.test_contact_uuids)
        return self.drafts[int(listeners * self.rng.random() ** 2)]

    # -- runs --------------------------------------------------------------------------------------------------

    def add(self, created: int, flow: dict, contact: _ContactDraft, **spec: Any) -> None:
        self.runs.append((created, flow, contact, spec))

    def show_text(self, week: int, *, substantive_only: bool = False) -> str:
        rng = self.rng
        roll = rng.random()
        if not substantive_only and roll < 0.16:
            return _NOISE[int(rng.random() * len(_NOISE))]
        bank = _RQA_BANKS.get(week) or _RQA_BANKS[1 + (week - 1) % 4]
        text = bank[int(rng.random() * len(bank))]
        if roll > 0.8:
            text = _GREETINGS[int(rng.random() * len(_GREETINGS))] + text
        elif roll > 0.7:
            text = text + _SIGN_OFFS[int(rng.random() * len(_SIGN_OFFS))]
        elif roll > 0.68:
            text = text + "\n"
        return text

    def answer(self, result: ResultSpec, week: int | None = None) -> str:
        rng = self.rng
        kind = result.kind
        if kind == "rqa":
            return self.show_text(week or 1)
        if kind == "age":
            if rng.random() < 0.3:
                return _AGE_WORDS[int(rng.random() * len(_AGE_WORDS))]
            template = _AGE_TEMPLATES[int(rng.random() * len(_AGE_TEMPLATES))]
            return template.format(n=14 + int(rng.random() * 55))
        bank = {"gender": _GENDER, "location": _LOCATIONS, "yes_no": _YES_NO, "language": _LANGUAGES}.get(kind, _GENERIC)
        return _bank_entry(bank, rng)[0]

    def show_time(self, week: int) -> int:
        """When a reply to the show of ``week`` arrives: mostly the SMS-ad evening and the show day."""
        rng = self.rng
        week_start = PROJECT_START + (week - 1) * 7 * _DAY
        roll = rng.random()
        if roll < 0.30:
            return week_start + 19 * _HOUR + 30 * _MINUTE + int(rng.random() * 4 * _HOUR)
        if roll < 0.55:
            return week_start + 4 * _DAY + int(rng.random() * _DAY)
        if roll < 0.92:
            return week_start + int(rng.random() * 7 * _DAY)
        return week_start + 7 * _DAY + int(rng.random() * 5 * _DAY)  # late replies, into later weeks

    def show_run(self, week: int, moment: int, contact: _ContactDraft | None = None, *, text: str | None = None,
                 exact: bool = False) -> None:
        """A keyword-triggered show run answered at ``moment`` (exactly, when ``exact``)."""
        flow = self.show_flows[week - 1]
        result = self.ws._flow_specs[flow["uuid"]].results[0]
        contact = contact or self.pick_contact()
        if text is None:
            text = _STOP[int(self.rng.random() * len(_STOP))] if self.rng.random() < 0.006 else self.show_text(week)
        delay = 0 if exact else int(self.rng.random() * 3 * _SECOND)
        answered = moment + delay
        self.add(answered - 2 * _SECOND, flow, contact, answers=[(result, text, answered)],
                 modified=answered + 150_000 + int(self.rng.random() * 400_000), exit_type="completed")

    def empty_run(self, flow: dict, moment: int) -> None:
        """A run whose contact never answered: no values, expired a week later (or still active)."""
        contact = self.pick_contact()
        expires = moment + flow["expires"] * _MINUTE
        active = self.rng.random() < 0.15
        roll = self.rng.random()
        ended = "expired" if roll < 0.8 else ("failed" if roll > 0.93 and self.ws.shapes == SHAPES_REAL else "interrupted")
        self.add(moment, flow, contact, answers=[], modified=moment if active else expires,
                 exit_type=None if active else ended,
                 start=_uuid(self.rng) if self.ws._flow_specs[flow["uuid"]].week is None else None)

    def survey_run(self, flow: dict, contact: _ContactDraft, moment: int, *, keys: Sequence[ResultSpec] | None = None,
                   start_uuid: str | None = None) -> None:
        """A survey run: the contact answers the questions in order, maybe stopping part way."""
        rng = self.rng
        spec = self.ws._flow_specs[flow["uuid"]]
        results = list(spec.results if keys is None else keys)
        answers = []
        t = moment + int(rng.random() * 20 * _MINUTE)
        exit_type: str | None = "completed"
        for result in results:
            text = self.answer(result)
            if rng.random() < 0.004:
                text = _STOP[int(rng.random() * len(_STOP))]
            answers.append((result, text, t))
            if text.strip().lower() in _STOP_WORDS:
                break
            t += 20 * _SECOND + int(rng.random() * 10 * _MINUTE)
        partial = keys is None and len(answers) == len(results) and rng.random() < 0.25
        if partial:
            answers = answers[: int(rng.random() * len(answers))]
        stopped = bool(answers) and answers[-1][1].strip().lower() in _STOP_WORDS
        if len(answers) == len(spec.results) or stopped:
            modified = answers[-1][2] + 300_000
        elif rng.random() < 0.1:
            exit_type, modified = None, (answers[-1][2] if answers else moment) + 300_000
        else:
            exit_type, modified = "expired", moment + flow["expires"] * _MINUTE
        if answers and spec.name == "csap_demog":
            contact.fields = {"gender": _first(answers, "gender"), "age": _first(answers, "age")}
        self.add(moment, flow, contact, answers=answers, modified=modified, exit_type=exit_type,
                 start=start_uuid or _uuid(rng))

    def generate(self) -> None:
        rng = self.rng
        fixed = self.scenario_runs()
        remaining = max(0, self.size - fixed)
        if self.show_flows:
            shows = int(remaining * (0.72 if self.survey_flows else 1.0))
            for _ in range(shows):
                week = 1 + int(rng.random() * len(self.show_flows))
                if rng.random() < 0.04:
                    self.empty_run(self.show_flows[week - 1], self.show_time(week))
                else:
                    self.show_run(week, self.show_time(week))
            remaining -= shows
        for n, flow in enumerate(self.survey_flows):
            share = remaining if n == len(self.survey_flows) - 1 else int(remaining * 0.64)
            remaining -= share
            # The first survey (demographics) ran from the first week, later ones (evaluation) from week 3.
            self.survey_runs(flow, share, since=_eat(12, 3) if n == 0 else _eat(12, 20))

    def survey_runs(self, flow: dict, count: int, *, since: int) -> None:
        """About ``count`` runs of one survey started between ``since`` and a few days after the project;
        some respondents take it two or three times."""
        rng = self.rng
        spec = self.ws._flow_specs[flow["uuid"]]
        made = 0
        batch_uuids = [_uuid(rng) for _ in range(6)]
        while made < count:
            moment = since + int(rng.random() * (PROJECT_END - since + 3 * _DAY))
            if rng.random() < 0.05:
                self.empty_run(flow, moment)
                made += 1
                continue
            contact = self.pick_contact()
            self.survey_run(flow, contact, moment, start_uuid=batch_uuids[int(rng.random() * 6)])
            made += 1
            repeats = 1 if rng.random() < 0.10 else (2 if rng.random() < 0.025 else 0)
            for _ in range(min(repeats, count - made)):
                # A repeat answers fewer questions, often differently: keys answered only before survive.
                moment += _HOUR + int(rng.random() * 5 * _DAY)
                keys = spec.results[: 1 + int(rng.random() * max(1, len(spec.results) - 1))]
                self.survey_run(flow, contact, moment, keys=keys, start_uuid=batch_uuids[0])
                made += 1

    def scenario_runs(self) -> int:
        """Runs placed on purpose: boundaries, corrections, out-of-window and test-contact runs."""
        before = len(self.runs)
        if len(self.show_flows) >= 1:
            for boundary in _CHANNEL_BOUNDARIES:
                for moment in (boundary - 1, boundary):
                    week = min(max(1, 1 + (moment - PROJECT_START) // (7 * _DAY)), len(self.show_flows))
                    self.show_run(week, moment, text=self.show_text(week, substantive_only=True), exact=True)
            self.show_run(min(4, len(self.show_flows)), PROJECT_END + 1, exact=True)
            # Out of the project window: a pilot before the launch and replies long after the last show.
            for moment in (_eat(11, 24, 10), _eat(11, 28, 15, 30), _eat(2, 3, 8, year=2019)):
                self.show_run(1, moment)
            self.show_run(len(self.show_flows), _eat(1, 8, 11, year=2019))
            self.show_run(1, _eat(12, 2, 19, 40, 0), text="STOP", exact=True)
            self.show_run(2, _eat(12, 13, 20), text="", exact=True)
            # Identical modified_on for two runs, so ties must be broken by id.
            contact = self.pick_contact()
            for _ in range(2):
                self.add(_eat(12, 13, 21) - _SECOND, self.show_flows[min(1, len(self.show_flows) - 1)], contact,
                         answers=[(self.ws._flow_specs[self.show_flows[min(1, len(self.show_flows) - 1)]["uuid"]].results[0],
                                   "waan ku raacsanahay", _eat(12, 13, 21))],
                         modified=_eat(12, 13, 21) + 500_000, exit_type="completed")
        if len(self.show_flows) >= 3:
            # C2: week-3 flow replies around 2018-12-23T00:00+03:00 (strictly later ones move to week 4).
            for offset in (-_SECOND, -1, 0, 1, _SECOND, 3 * _HOUR, 2 * _DAY, 5 * _DAY):
                self.show_run(3, _C2_CHANGEOVER + offset, text=self.show_text(3, substantive_only=True), exact=True)
        if len(self.show_flows) >= 4:
            # C3 and C4: January delivery bursts of delayed week-2 messages into the week-4 flow.
            bursts = max(8, self.size // 300)
            for start, end in (_C3_BURST, _C4_BURST):
                for moment in (start - 1, start, end - 1, end, end + _SECOND):
                    self.show_run(4, moment, text=self.show_text(2, substantive_only=True), exact=True)
                for _ in range(bursts):
                    self.show_run(4, start + int(self.rng.random() * (end - start - _SECOND)), text=self.show_text(2))
        tests = [d for d in self.drafts if d.uuid in self.ws.test_contact_uuids]
        for n, contact in enumerate(tests):
            for week in range(1, len(self.show_flows) + 1):
                moment = PROJECT_START + (week - 1) * 7 * _DAY + 10 * _HOUR + n * _MINUTE
                self.show_run(week, moment, contact, text=_TEST_TEXTS[(week + n) % len(_TEST_TEXTS)])
            if self.show_flows:
                self.show_run(1, _eat(11, 30, 9, n), contact, text="test")
            for flow in self.survey_flows:
                self.survey_run(flow, contact, _eat(12, 4, 9 + n))
        if self.show_flows:
            self.typed_number_runs()
        return len(self.runs) - before

    def typed_number_runs(self) -> None:
        """Show answers holding the sender's own number, written the ways people write it, and one spreadsheet
        formula: stage 2 must redact the numbers, the CSV writer neutralise the formula."""
        listeners = [d for d in self.drafts if d.urns and d.urns[0].startswith("tel:+252")
                     and d.uuid not in self.ws.test_contact_uuids]
        if not listeners:
            return
        templates = (
            "waan ku raacsanahay, call me on {spaced}",  # 0610 012 345
            "{international} waa lambarkayga, shaqo ayaan u baahanahay",  # +252 61 0012345
            "i soo wac 252{digits} mahadsanid",
            "lambarkayga waa 0{digits}, I am 25 and born 1998",
        )
        for n, template in enumerate(templates):
            contact = listeners[(7 * n + 3) % len(listeners)]
            digits = contact.urns[0][len("tel:+252"):]
            text = template.format(digits=digits, spaced=f"0{digits[:3]} {digits[3:6]} {digits[6:]}",
                                   international=f"+252 {digits[:2]} {digits[2:]}")
            week = 1 + n % len(self.show_flows)
            self.show_run(week, PROJECT_START + (week - 1) * 7 * _DAY + 4 * _DAY + (10 + n) * _HOUR, contact,
                          text=text, exact=True)
        self.show_run(1, PROJECT_START + 4 * _DAY + 15 * _HOUR, listeners[len(listeners) // 2],
                      text='=HYPERLINK("http://x","y")', exact=True)

    # -- materialise -------------------------------------------------------------------------------------------

    def build(self) -> None:
        ws = self.ws
        rng = self.rng
        self.runs.sort(key=lambda entry: entry[0])
        for created, _flow, contact, spec in self.runs:
            answers = spec["answers"]
            last = answers[-1][2] if answers else created
            contact.first = created if contact.first is None else contact.first
            contact.last = max(contact.last or last, last)
        for created, flow, contact, spec in self.runs:
            run = ws._build_run(
                run_id=ws._next_run_id, run_uuid=_uuid(rng), flow=flow, contact={"uuid": contact.uuid, "name": contact.name},
                start_uuid=spec.get("start"), created=created, answers=spec["answers"],
                modified=spec["modified"], exited=None if spec["exit_type"] is None else spec["modified"],
                exit_type=spec["exit_type"],
            )
            ws._next_run_id += 1
            ws._runs[run["id"]] = run
            ws._run_id_by_uuid[run["uuid"]] = run["id"]
            for value in run["values"].values():
                if value["category"] == "Stop":
                    contact.stopped_at = max(parse_timestamp(value["time"]), contact.stopped_at or 0)
        keys = [(run["modified_on"], run["id"]) for run in ws._runs.values()]
        ws._run_index = _Index(keys)
        by_flow: dict[str, list] = {f["uuid"]: [] for f in ws._flows}
        for key in keys:
            by_flow[ws._runs[key[1]]["flow"]["uuid"]].append(key)
        ws._flow_run_index = {flow_uuid: _Index(flow_keys) for flow_uuid, flow_keys in by_flow.items()}
        if keys:
            ws._see(parse_timestamp(ws._run_index.keys[-1][0]))
        for draft in self.drafts:
            first = draft.first if draft.first is not None else _eat(11, 25) + int(rng.random() * 30 * _DAY)
            created = first - int(rng.random() * 10 * _SECOND) - _SECOND
            modified = created + _SECOND
            if draft.fields:
                modified = max(modified, (draft.last or created) + _SECOND)
            if draft.stopped_at is not None:
                modified = max(modified, draft.stopped_at + _SECOND)
            built = ws._build_contact(
                contact_uuid=draft.uuid, name=draft.name, language=draft.language, urns=draft.urns,
                created=created, modified=modified, last_seen=draft.last, stopped=draft.stopped_at is not None,
                fields={"district": None, **(draft.fields or {})},
            )
            ws._store_contact(ws._next_contact_number, built, index=False)
            ws._next_contact_number += 1
        ws._contact_index = _Index((c["modified_on"], number) for number, c in ws._contacts.items())


def _first(answers: Sequence[tuple[ResultSpec, str, int]], key: str) -> str | None:
    for result, text, _ in answers:
        if result.key == key:
            return text.strip()
    return None


def _archive_oldest(workspace: Workspace, archive_before: date) -> None:
    """Moves every run modified before ``archive_before`` into archives: monthly archives for the whole
    months before its month, daily archives for the days of its month; plus the empty archives Rapid Pro
    also lists (a run month without runs, a message month)."""
    runs = workspace._run_index.keys
    if runs:
        first = date.fromisoformat(runs[0][0][:10])
        month = date(first.year, first.month, 1)
        while _period_end(month, "monthly") <= archive_before:
            workspace.archive_runs(period="monthly", start_date=month)
            month = _period_end(month, "monthly")
        day = max(month, first)
        while day < archive_before:
            workspace.archive_runs(period="daily", start_date=day)
            day += timedelta(days=1)
    month_start = date(archive_before.year, archive_before.month, 1)
    last_month = (month_start - timedelta(days=1)).replace(day=1)
    workspace._add_archive("run", "monthly", (last_month - timedelta(days=1)).replace(day=1), [])
    messages = []
    if workspace.shapes == SHAPES_REAL:
        # Real servers list message archives even when asked for run archives: give one something to hold.
        for number, run in enumerate(workspace.archived_runs()[:20], start=1):
            for value in run["values"].values():
                messages.append({"id": number, "contact": {"uuid": run["contact"]["uuid"]}, "direction": "in",
                                 "type": "flow", "text": value.get("input"), "created_on": value.get("time")})
    workspace._add_archive("message", "monthly", last_month, messages)


@contextlib.contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    """Generation creates millions of small dicts that never form cycles; the cyclic collector would scan
    the growing heap again and again and more than double the run time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def generate_workspace(
    *,
    seed: int,
    size: int,
    flows: Sequence[FlowSpec] = CSAP_FLOWS,
    test_contact_uuids: Sequence[str] = CSAP_TEST_CONTACT_UUIDS,
    archive_before: date | str | None = "2018-12-03",
    shapes: str = SHAPES_SUPERSET,
    anonymous: str | None = None,
    late_commits: int = 0,
) -> Workspace:
    """Makes a workspace of about ``size`` runs (at least the hundred or so placed on purpose).

    The same arguments always give the same workspace. Runs modified before ``archive_before`` (a UTC date;
    None keeps every run live) are moved into run archives; with the default that is the November pilot in
    a monthly archive and the first project days (including the run at the project start) in daily ones.

    ``shapes`` picks how objects are served: ``superset`` (every field of every client version) or ``real``
    (what real servers send, rapid-pro.md 6.4). ``anonymous`` (``masked`` or ``empty``) makes it an anonymous
    workspace. ``late_commits`` adds that many late commits (``add_late_run``, one per show flow in turn) at the
    end of the workspace's time, as if a show were on air: each held-back run is committed only after the
    server has served a page of its flow's runs.
    """
    if size < 0:
        raise WorkspaceError(f"size must not be negative, got {size}", field="size")
    names = [spec.name for spec in flows]
    if len(set(names)) != len(names):
        raise WorkspaceError("flow names must be unique", field="flows")
    workspace = Workspace(seed=seed, flows=flows, test_contact_uuids=test_contact_uuids, shapes=shapes,
                          anonymous=anonymous)
    rng = random.Random(seed)
    generator = _Generator(workspace, rng, size)
    with _garbage_collection_paused(), workspace.lock:
        generator.make_contacts(max(30, int(size * 0.35)))
        generator.generate()
        generator.build()
        if archive_before is not None:
            cutoff = archive_before if isinstance(archive_before, date) else date.fromisoformat(archive_before)
            _archive_oldest(workspace, cutoff)
        _hold_back(workspace, late_commits)
    return workspace


def _hold_back(workspace: Workspace, count: int) -> None:
    """Adds ``count`` late runs (see ``add_late_run``), one per show flow in turn, from listeners with a URN."""
    shows = [f["name"] for f in workspace._flows if workspace._flow_specs[f["uuid"]].week] or [
        f["name"] for f in workspace._flows]
    listeners = [c for c in workspace.contacts() if c["urns"] and c["uuid"] not in workspace.test_contact_uuids]
    for n in range(count):
        flow = workspace.flow(shows[n % len(shows)])
        key = workspace._flow_specs[flow["uuid"]].results[0].key
        contact = listeners[(n * 7919) % len(listeners)]
        workspace.add_late_run(flow=flow["name"], contact=contact["uuid"], answers={key: "waan maqlay, mahadsanid"})
