"""One record per respondent: folding the message records (spec pipeline.md 7.7.6-7.7.8).

``csap_ind.csv`` has one row per uid, in the order of each uid's first message. The messages of a respondent
are folded key by key, by the class the key belongs to (7.7.6):

| class  | keys                                        | folded value                                  |
| ------ | ------------------------------------------- | --------------------------------------------- |
| equal  | uid, operator, survey analysis and raw keys | the common value (a difference is an error)   |
| concat | the show raw texts                          | present texts joined with ``;``               |
| codes  | each show's codes (its matrix columns)      | STOP if any is STOP; else the codes any holds |
|        |                                             | (union), an NC code only if every message     |
|        |                                             | holding the show's codes has it               |
| bool   | consent, channel, non_logical_time, weeks   | ``true`` if any is ``true``                   |
| binary | the binary analysis keys                    | see :func:`_fold_binary`                      |
| other  | noise, times, ids, labels, ...              | ``MERGED``                                    |

2019 folded pairwise from the left (((m1 + m2) + m3) ...). Every rule but the binary one is associative, so
folding each key over the whole group at once gives the same values; the binary rule is applied pairwise from
the left, as in 2019.

2019 folded the matrix columns one by one: a column is ``STOP`` if any message's is, an NC column (one whose
name ends in ``NC``) ``1`` only if no message's is ``0``, any other column ``1`` if any message's is. Folding a
show's codes (``rqa_s01e01_codes``, :attr:`~redss_pipeline.core.config.RqaPlan.codes_key`) as above renders the
same columns.

Two 2019 behaviours shape the output and are kept on purpose:

- a respondent with a single message is not folded: the individual record *is* that message record, so the
  fix-up of 7.7.7 lands on the message row of ``csap_mes.csv`` too;
- the fix-up then repairs the NA and NC columns that folding across shows leaves behind.

Records are immutable here, so :func:`fold_individuals` returns the messages (with the fix-up of single-message
respondents and the withdrawn-consent overwrite) together with the individuals.

A respondent with more messages than a chunk of stage 3 holds (a heavy sender: one number sent 5 % of a
series' messages) comes in several chunks of their own, and :class:`SplitRespondent` folds them piece by piece.
Folding is a left fold, key by key, so the fold of the earlier pieces, taken as one message, folds with the next
piece's messages to the same values as all the messages at once; memory then stays that of one chunk.
"""

from __future__ import annotations

import operator
from itertools import chain, compress
from types import MappingProxyType
from typing import Any, Callable, Container, Mapping, NamedTuple

from redss_pipeline.core.code_scheme import NA, NC, NIC, NR, NS, STOP
from redss_pipeline.core.config import PipelineConfig
from redss_pipeline.core.errors import RawDataError
from redss_pipeline.core.record_fields import CONSENT_WITHDRAWN_KEY, NON_LOGICAL_TIME_KEY, UID_KEY, RecordColumns
from redss_pipeline.core.records import Record, Step
from redss_pipeline.core.run_context import RunContext
from redss_pipeline.generate.analysis_columns import FALSE, TRUE, ShowCodes, withdraw_consent

__all__ = ["MERGED", "AMBIVALENT", "fold_individuals", "SplitRespondent", "fold_in_words"]

MERGED = "MERGED"
"""The value of every folded key that has no fold rule (none of them is exported)."""
AMBIVALENT = "ambivalent"
"""What two different binary answers fold to (the 2019 fold library's value, also a binary StringValue)."""

_MISSING: Any = object()

# Binary "missing" values, strongest first: of two missing values the fold keeps the earlier one here.
_BINARY_MISSING_RANK = MappingProxyType(
    {value: rank for rank, value in enumerate((STOP, NR, NIC, NC, NA, NS, _MISSING))})


def fold_individuals(
    messages: list[Record], *, config: PipelineConfig, run: RunContext
) -> tuple[list[Record], list[Record]]:
    """Folds the analysed message records to one record per uid, fixes them up and applies withdrawn consent.

    Order of work, as in 2019: fold (7.7.6), fix up every individual (7.7.7; for a single-message respondent
    this is the message record itself), then the withdrawn-consent overwrite on the messages and then on the
    individuals (7.7.8). Returns ``(messages, individuals)``: the messages in their order, the individuals in
    the order of each uid's first message.
    """
    fold_step = run.step("generate/fold_individuals")
    rules = _FoldRules(config)
    fix_up = _FixUp(_fix_up_plans(config), run.step("generate/individual_fix_up"))

    groups: dict[Any, list[int]] = {}
    for index, message in enumerate(messages):
        groups.setdefault(_uid(message, index), []).append(index)

    messages = list(messages)
    individuals: list[Record | int] = []  # an int stands for "the message record at this index"
    for uid, indices in groups.items():
        if len(indices) == 1:
            index = indices[0]
            messages[index] = fix_up(messages[index])
            individuals.append(index)
        else:
            values = rules.fold(uid, [messages[i] for i in indices])
            individuals.append(fix_up(Record.create(fold_step, values), values))

    messages = withdraw_consent(messages, run=run)
    folded_only = withdraw_consent([i for i in individuals if isinstance(i, Record)], run=run)
    folded_iter = iter(folded_only)
    return messages, [messages[i] if isinstance(i, int) else next(folded_iter) for i in individuals]


class SplitRespondent:
    """Folds one respondent whose messages come in several chunks, piece by piece (7.7.6-7.7.8).

    Give every piece but the last to :meth:`add` and the last to :meth:`finish`, each with the positions of
    its messages (their place in the message order). Between pieces it keeps the fold of the messages so far,
    or, while the respondent has only one message (the others may all have been filtered out), that message
    itself, held back: a respondent left with one message is not folded, and the fix-up lands on the message
    row (see the module notes), so it is written only once it is known to have company.
    """

    def __init__(self, *, config: PipelineConfig, run: RunContext):
        self._config = config
        self._run = run
        self._fold_step = run.step("generate/fold_individuals")
        self._rules = _FoldRules(config)
        self._fix_up = _FixUp(_fix_up_plans(config), run.step("generate/individual_fix_up"))
        self._first_position: int | None = None  # of the respondent's first message: orders their individual
        self._held: tuple[int, Record] | None = None  # their only message so far, with its position
        self._folded: dict[str, Any] | None = None  # the fold of their messages so far, once there are two

    def add(self, positions: list[int], messages: list[Record]) -> tuple[list[int], list[Record]]:
        """Takes a piece that more pieces follow; returns the messages that can be written now, with their
        positions (withdrawn consent applied)."""
        positions, messages = self._with_held(positions, messages)
        if self._folded is None and len(messages) < 2:
            self._held = (positions[0], messages[0]) if messages else None
            return [], []
        if not messages:  # every message of this piece was filtered out
            return [], []
        uid = _uid(messages[0], 0)
        earlier = [] if self._folded is None else [self._folded]
        self._folded = self._rules.fold(uid, [*earlier, *messages])
        return positions, withdraw_consent(messages, run=self._run)

    def finish(self, positions: list[int], messages: list[Record]
               ) -> tuple[list[int], list[Record], list[tuple[int, Record]]]:
        """Takes the last piece; returns the messages to write with their positions, and the respondent's
        individual with the position that orders it (none if no message of theirs was kept)."""
        positions, messages = self._with_held(positions, messages)
        if self._folded is None:  # never two messages before this piece: folded as a whole respondent
            messages, individuals = fold_individuals(messages, config=self._config, run=self._run)
            return positions, messages, [(positions[0], individual) for individual in individuals]
        assert self._first_position is not None  # set with the first message
        values = self._rules.fold(self._folded[UID_KEY], [self._folded, *messages])
        [individual] = withdraw_consent([self._fix_up(Record.create(self._fold_step, values), values)], run=self._run)
        return positions, withdraw_consent(messages, run=self._run), [(self._first_position, individual)]

    def _with_held(self, positions: list[int], messages: list[Record]) -> tuple[list[int], list[Record]]:
        for index, message in enumerate(messages):
            _uid(message, index)
        if self._held is not None:
            position, message = self._held
            positions, messages = [position, *positions], [message, *messages]
            self._held = None
        if self._first_position is None and positions:
            self._first_position = positions[0]
        return positions, messages


def _uid(message: Record, index: int) -> Any:
    if UID_KEY not in message:
        raise RawDataError("message record has no uid", record=f"#{index}", field=UID_KEY)
    return message[UID_KEY]


def _fix_up_plans(config: PipelineConfig) -> list[_FixUpPlan]:
    plans = []
    for plan in config.rqa_plans:
        plans.append(_FixUpPlan(raw_field=plan.raw_field, show=ShowCodes(plan)))
    return plans


class _FixUp:
    """The fix-up of 7.7.7 with the plans of the configuration; reads only the keys the plans name.

    Per show: a non-empty raw text takes NA out of the show's codes (its ``<prefix>NA`` column reads ``"0"``);
    then, if the codes hold no code other than NC (NA counting as one, if it is still there), NC is added. A
    respondent who answered a show only with noise ends with NA 0 and NC 1 for it; a show never answered keeps
    NA 1. Codes other than a list (STOP, or none) are left as they are: add_analysis_columns writes every show's
    list on every message, so an individual lacks one only if all of its messages did (2019 would have written
    NA and NC cells there and left the others empty; no run of stage 3 makes such a record).
    """

    def __init__(self, plans: list[_FixUpPlan], step: Step):
        self._plans = plans
        self._step = step
        keys = [key for plan in plans for key in (plan.raw_field, plan.show.key)]
        self._keys = list(dict.fromkeys(keys))
        self._columns = RecordColumns(self._keys)

    def __call__(self, record: Record, values: Mapping[str, Any] | None = None) -> Record:
        """``record`` fixed up; ``values`` is its content when the caller already holds it as a dict."""
        if values is None:
            values = dict(zip(self._keys, self._columns(record)))  # an absent key reads as None, as with .get
        changed: dict[str, list[str]] = {}  # only what changes, so an individual needing no repair gets no entry
        for plan in self._plans:
            show = plan.show
            codes = values.get(show.key)
            if type(codes) is not list:
                continue
            raw = values.get(plan.raw_field)
            answered = raw is not None and raw != ""
            fixed = [code for code in codes if code != NA] if answered else codes
            if not any(code not in show.not_coded for code in fixed):
                fixed = show.in_scheme_order([*fixed, *show.not_coded])
            if fixed != codes:
                changed[show.key] = fixed
        return record.updated(self._step, changed)


class _FixUpPlan(NamedTuple):
    raw_field: str
    show: ShowCodes


class _AnyPresent:
    """Every value a message can hold for a key (a key absent from a message is ``_MISSING``)."""

    __slots__ = ()

    def __contains__(self, value: object) -> bool:
        return value is not _MISSING


_FoldRule = Callable[[Any, str, list[Any]], Any]
"""``rule(uid, key, values)``: the folded value of ``key`` from its values on the respondent's messages, in
message order (``_MISSING`` for a message without the key); ``_MISSING`` as the result leaves the key absent."""


class _FoldRules:
    """Which fold rule each key follows (the table of 7.7.6), derived from the configuration once per run.

    Besides its rule, each key names the values that its rule folds to themselves when every message holds the
    same one (a list or STOP for a show's codes, any value for an equal key, ...). Most keys of most
    respondents are such: :meth:`fold` finds them for all keys at once, and calls the rule of the others only.
    """

    def __init__(self, config: PipelineConfig):
        any_present = _AnyPresent()
        nothing: frozenset[str] = frozenset()
        # key -> (its rule, the values its rule keeps when every message holds the same one, the rule in words)
        rules: dict[str, tuple[_FoldRule, Container[Any], str]] = {}
        equal = (_fold_equal, any_present, "the value all of them hold (they must agree)")
        for key in [UID_KEY, config.operator.analysis_key]:
            rules[key] = equal
        for survey in config.survey_plans:
            rules[survey.analysis_key] = equal
            rules[survey.raw_field] = equal
        for plan in config.rqa_plans:
            rules[plan.raw_field] = (_fold_concat, nothing, "their texts joined with ';'")  # "a;a" is not "a"
            rules[plan.codes_key] = (_CodesFold(ShowCodes(plan)), _LIST_OR_STOP,
                                     "the codes any of them holds (STOP if any is STOP; an NC code only if every "
                                     "one holding the show's codes has it)")
            if plan.binary is not None:
                rules[plan.binary.analysis_key] = (_fold_binary, any_present,
                                                   "their answers folded pairwise (two different answers give "
                                                   "ambivalent; an answer wins over NA, NS, NC, NR or absent)")
        for key in [CONSENT_WITHDRAWN_KEY, *config.channels, NON_LOGICAL_TIME_KEY, *config.weeks]:
            rules[key] = (_fold_bool, frozenset({TRUE, FALSE}), "true if any of them is true")
        self._keys = list(rules)
        self._folds = [fold for fold, _, _ in rules.values()]
        self._keeps = [keeps for _, keeps, _ in rules.values()]
        self._words = {key: words for key, (_, _, words) in rules.items()}
        self._rows = RecordColumns(self._keys, _MISSING)

    def words(self, key: str) -> str:
        """The rule of ``key`` in words (``MERGED`` for a key without one)."""
        return self._words.get(key, f"{MERGED} (their values are not combined)")

    def fold(self, uid: Any, group: list[Mapping[str, Any]]) -> dict[str, Any]:
        """The individual record's values: every key of every message, in the order first met, folded by its
        rule; ``MERGED`` for a key without one. A member of ``group`` may be the fold of earlier messages."""
        folded = dict.fromkeys(chain.from_iterable(group), MERGED)
        rows = list(map(self._rows, group))  # per message, its value of every key that has a rule, in rule order
        columns = list(zip(*rows))  # per key, its value on every message, in message order
        first, count = rows[0], len(rows)
        # The keys whose messages all hold one value that their rule keeps, found with C loops over all keys.
        try:
            kept = list(map(operator.and_, map(count.__eq__, map(tuple.count, columns, first)),
                            map(operator.contains, self._keeps, first)))
        except TypeError:  # an unhashable value: every key goes through its rule
            kept = [False] * len(columns)
        folded.update(zip(compress(self._keys, kept), compress(first, kept)))
        # The other keys through their rules, in rule order (which decides the first disagreement reported).
        for key, rule, values in compress(zip(self._keys, self._folds, columns), map(operator.not_, kept)):
            if key not in folded:  # no message has it
                continue
            value = rule(uid, key, list(values))
            if value is _MISSING:
                del folded[key]
            else:
                folded[key] = value
        return folded


def fold_in_words(config: PipelineConfig, key: str) -> str:
    """How a respondent's individual record combines the values of ``key`` on their messages (7.7.6), in words:
    what ``explain`` says of a ``csap_ind.csv`` column of a person with several messages."""
    return _FoldRules(config).words(key)


def _fold_equal(uid: Any, key: str, values: list[Any]) -> Any:
    first = values[0]
    for value in values[1:]:
        if value != first:
            shown = ["(absent)" if v is _MISSING else repr(v) for v in (first, value)]
            raise RawDataError(
                f"the respondent's messages disagree ({shown[0]} and {shown[1]}); this key must be equal "
                "on all of a respondent's messages",
                record=uid, field=key,
            )
    return first


def _fold_concat(uid: Any, key: str, values: list[Any]) -> Any:
    present = [value for value in values if value is not _MISSING and value is not None]
    return ";".join(present) if present else _MISSING


class _ListOrStop:
    """The values of a show's codes that their fold keeps when every message holds the same one."""

    __slots__ = ()

    def __contains__(self, value: object) -> bool:
        return type(value) is list or value == STOP


_LIST_OR_STOP = _ListOrStop()


class _CodesFold:
    """The fold of one show's codes: STOP if any message's is STOP; else the codes any message holds, except
    that an NC code is kept only if no message lacks it (a message without the key counts as holding no code, as
    2019 counted an absent matrix column as ``"0"``, and takes no part in the NC rule)."""

    __slots__ = ("_show",)

    def __init__(self, show: ShowCodes):
        self._show = show

    def __call__(self, uid: Any, key: str, values: list[Any]) -> Any:
        present = [value for value in values if value is not _MISSING]
        for value in present:
            if type(value) is not list and value != STOP:
                raise RawDataError(f"a show's codes must be a list of its codes' values, found {value!r}",
                                   record=uid, field=key)
        if STOP in present:
            return STOP
        if not present:
            return _MISSING
        held = set(chain.from_iterable(present))
        for code in self._show.not_coded:
            if not all(code in value for value in present):
                held.discard(code)
        return self._show.in_scheme_order(held)


def _fold_bool(uid: Any, key: str, values: list[Any]) -> Any:
    return TRUE if TRUE in values else FALSE


def _fold_binary(uid: Any, key: str, values: list[Any]) -> Any:
    """Pairwise from the left: of two missing values the stronger (STOP > NR > NIC > NC > NA > NS > absent),
    one missing gives the other, two answers give the first if it is ``ambivalent`` or both are equal, else
    ``ambivalent``. WS is not a missing value, so WS against an answer gives ``ambivalent``."""
    result = values[0]
    for value in values[1:]:
        result = _fold_binary_pair(result, value)
    return result


def _fold_binary_pair(a: Any, b: Any) -> Any:
    a_missing = a in _BINARY_MISSING_RANK
    b_missing = b in _BINARY_MISSING_RANK
    if a_missing and b_missing:
        return a if _BINARY_MISSING_RANK[a] <= _BINARY_MISSING_RANK[b] else b
    if a_missing:
        return b
    if b_missing:
        return a
    # 2019 meant "a or b is ambivalent" but tested a twice; the result is the same either way.
    if a == AMBIVALENT:
        return AMBIVALENT
    return a if a == b else AMBIVALENT
