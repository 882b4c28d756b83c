"""The cleaners and the noise rule (redss_pipeline.generate.cleaners) against every example of cleaners.md."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

import redss_pipeline.generate.cleaners as cleaners_module
from redss_pipeline.core.code_scheme import NC, load_code_scheme
from redss_pipeline.core.config import CLEANER_NAMES
from redss_pipeline.core.errors import ConfigError
from redss_pipeline.generate.cleaners import (
    CLEANERS,
    clean_age,
    clean_gender,
    clean_mogadishu_sub_district,
    clean_operator,
    clean_somalia_district,
    clean_urban_rural,
    clean_yes_no,
    cleaner_named,
    core_age_2019,
    is_noise,
    is_only_yes_no,
    looks_demographic,
)

SCHEME_DIR = Path(__file__).resolve().parents[1] / "code_schemes"


def _data(name):
    return json.loads(resources.files("redss_pipeline").joinpath("data", name).read_text("utf-8"))


# cleaners.md 2.5: text, matches the noise pattern, looks demographic, is noise.
NOISE_EXAMPLES = [
    ('ok', True, False, True),
    ('Ok!', True, False, True),
    ('OKEY', True, False, True),
    ('asc', True, False, True),
    ('kalkaal', True, False, True),
    ('Mahad sanid', True, False, True),
    ('In sha Allah', True, False, True),
    ('330', True, False, True),
    ('Hello!!', True, False, True),
    ('thanks', True, False, True),
    ('xx', True, False, True),
    ('a', True, False, True),
    ('dal dhis', True, False, True),
    ('!!!', True, False, True),
    ('', True, False, True),
    ('short', False, False, True),
    ('i agree', False, False, True),
    ('ok thanks', False, False, True),
    ('hello there', False, False, False),
    ('haa', False, True, False),
    ('maya', False, True, False),
    ('m', True, True, False),
    ('male', False, True, False),
    ('25', True, True, False),
    ('to', True, True, False),
    ('go to it', False, True, False),
    ('mogadishu', False, True, False),
    ('waan ku raacsanahay', False, False, False),
    ('nabad iyo horumar', False, False, False),
    ('jobs for youth', False, False, False),
]

# cleaners.md section 3.
GENDER_EXAMPLES = [
    ('male', 'male'),
    ('Female', 'female'),
    ('M', 'male'),
    ('F', 'female'),
    ('man', 'male'),
    ('woman', 'female'),
    ('boy', 'male'),
    ('girl', 'female'),
    ('lab', 'male'),
    ('Labood', 'male'),
    ('rag', 'male'),
    ('wiil', 'male'),
    ('dhedig', 'female'),
    ('Dheddig', 'female'),
    ('naag', 'female'),
    ('gabar', 'female'),
    ('hooyo', 'female'),
    ('I am a woman', 'female'),
    ('xasan', 'male'),
    ('25', 'NC'),
    ('haa', 'NC'),
]

# cleaners.md section 4: text, yes/no cleaner, only-yes/no pattern.
YES_NO_EXAMPLES = [
    ('haa', 'yes', True),
    ('Yes', 'yes', False),
    ('yes please', 'yes', False),
    ('xaa', 'yes', False),
    ('haa waan ahay', 'yes', False),
    ('maya', 'no', True),
    ('No', 'no', False),
    ('mayo', 'no', False),
    ('may be', 'no', False),
    ('no thanks', 'no', False),
    ('haa maya', 'yes', False),
    ('hye', 'NC', True),
    ('ok', 'NC', False),
    ('I am not sure', 'NC', False),
]

# cleaners.md 5.6: text, core age (noise rule; None for NC), 2019 auto-code, new auto-code.
AGE_EXAMPLES = [
    ('sagaal i towan', 28, '28', '19'),
    ('labatad iyo satax sano', 25, '25', '23'),
    ('sodon iyo afar sano', 38, '38', '34'),
    ('toban iyo sideed', None, 'NC', '18'),
    ('sideed iyo toban', 28, '28', '18'),
    ('toban iyo kow', None, 'NC', '11'),
    ('lix iyo labaatan', 28, '28', '26'),
    ('sodon iyo shan', None, 'NC', '35'),
    ('konton iyo laba', None, 'NC', '52'),
    ('lixdan', None, 'NC', '60'),
    ('sagaashan', None, 'NC', '90'),
    ('thirteen', None, 'NC', '13'),
    ('often', None, 'NC', 'NC'),
    ('25', 25, '25', '25'),
    ('I am 25 years', 25, '25', '25'),
    ('25 sano', 25, '25', '25'),
    ('2O', 20, '20', '20'),
    ('I5', 15, '15', '15'),
    ('3o', 30, '30', '30'),
    ('11', 11, '11', '11'),
    ('89', 89, '89', '89'),
    ('10', None, 'NC', '10'),
    ('90', None, 'NC', '90'),
    ('95', None, 'NC', '95'),
    ('I am 95', None, 'NC', '95'),
    ('9', None, 'NC', 'NC'),
    ('100', None, 'NC', 'NC'),
    ('1990', None, 'NC', 'NC'),
    ('2 5', None, 'NC', 'NC'),
    ('lix iyo lawatan', 26, '26', '26'),
    ('sodon jir', 30, '30', '30'),
    ('labaatan', 22, '22', '20'),
    ('labaatan iyo shan', 27, '27', '25'),
    ('afartan', 44, '44', '40'),
    ('afartan iyo shan', 49, '49', '45'),
    ('fifty five', 55, '55', '55'),
    ('fifteen', 25, '25', '15'),
    ('toban', None, 'NC', '10'),
    ('sixty', None, 'NC', '60'),
    ('bar', None, 'NC', 'NC'),
    ('labaatan iyo bar', 22.5, 'NC', 'NC'),
    ('to', 70, '70', '70'),
    ('it', 17, '17', '17'),
    ('17 and 18', 17, '17', '17'),
]

# cleaners.md section 7 examples: text, sub-district cleaner, district cleaner.
LOCATION_CLEANER_EXAMPLES = [
    ('hodan', 'hodan', 'NC'),
    ('Hodon', 'hodan', 'NC'),
    ('wadajir', 'wadajir', 'NC'),
    ('Medina', 'wadajir', 'baidoa'),
    ('dayniile', 'daynile', 'NC'),
    ('karaan', 'karaan', 'NC'),
    ('Xamar Weyne', 'xamar weyne', 'mogadishu'),
    ('yaqshid', 'yaaqshid', 'NC'),
    ('Huriwa', 'heliwa', 'NC'),
    ('waberi', 'waaberi', 'NC'),
    ('Boondheere', 'boondheere', 'borama'),
    ('Abdiaziz', 'cabdlcasiis', 'NC'),
    ('wardhigley', 'wardhiigleey', 'NC'),
    ('jabjab', 'xamar jaabjab', 'NC'),
    ('Hodan, Mogadishu', 'hodan', 'mogadishu'),
    ('Mogadishu', 'NC', 'mogadishu'),
    ('Muqdisho', 'NC', 'mogadishu'),
    ('xamar', 'NC', 'mogadishu'),
    ('Hargeisa', 'NC', 'hargeysa'),
    ('Baidoa', 'NC', 'baidoa'),
    ('Kismayo', 'NC', 'kismayo'),
    ('Garowe', 'NC', 'garowe'),
    ('Galkayo', 'NC', 'gaalkacyo'),
    ('Bosaso', 'NC', 'bossaso'),
    ('Beledweyne', 'NC', 'belet weyne'),
    ('Afgooye', 'NC', 'afgooye'),
    ('Dhusamareeb', 'NC', 'dhuusamarreeb'),
    ('Adado', 'NC', 'cadaado'),
    ('Beled hawo', 'NC', 'belet xaawo'),
    ('Laascaanood', 'NC', 'laas caanood'),
    ('Las Anod', 'NC', 'NC'),
    ('nairobi', 'NC', 'NC'),
    ('town', 'NC', 'NC'),
]


# --- noise -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, matches_pattern, demographic, noise", NOISE_EXAMPLES)
def test_noise_rule_reproduces_2019_examples(text, matches_pattern, demographic, noise):
    """Each example of 2.5 is noise or not exactly as in 2019."""
    assert is_noise(text) is noise
    assert looks_demographic(text) is demographic
    # With no length limit only the acknowledgement pattern (and the demographic exception) decides.
    assert is_noise(text, min_length=0) is (matches_pattern and not demographic)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("haa", lambda t: is_only_yes_no(t) and clean_yes_no(t) == "yes"),
        ("maya", lambda t: is_only_yes_no(t) and clean_yes_no(t) == "no"),
        ("m", lambda t: clean_gender(t) == "male"),
        ("male", lambda t: clean_gender(t) == "male"),
        ("25", lambda t: core_age_2019(t) == 25),
        ("to", lambda t: core_age_2019(t) == 70),
        ("go to it", lambda t: core_age_2019(t) == 70),
        ("mogadishu", lambda t: clean_urban_rural(t) == "urban" and clean_somalia_district(t) == "mogadishu"),
    ],
)
def test_short_texts_escape_noise_for_the_stated_reason(text, reason):
    """The 'looks demographic because' column of 2.5 names a check that really succeeds."""
    assert reason(text)


def test_noise_minimum_length_counts_code_points():
    """Nine accented letters are short (noise), ten are not."""
    assert is_noise("é" * 9) is True
    assert is_noise("é" * 10) is False


def test_noise_minimum_length_is_a_parameter():
    """A longer minimum length makes a longer text noise; the default is 10."""
    assert is_noise("hello there") is False
    assert is_noise("hello there", min_length=20) is True


def test_punctuation_and_newline_only_texts_are_noise():
    """Texts of punctuation or spaces only match the acknowledgement pattern whatever their length."""
    assert is_noise("?!?! ... !!!! ....") is True
    assert is_noise("ok\n") is True


# --- gender and yes/no -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", GENDER_EXAMPLES)
def test_gender_cleaner_examples(text, expected):
    """The gender cleaner gives the result of each example of section 3."""
    assert clean_gender(text) == expected


@pytest.mark.parametrize("text, expected, only_yes_no", YES_NO_EXAMPLES)
def test_yes_no_cleaner_and_only_yes_no_pattern_examples(text, expected, only_yes_no):
    """The yes/no cleaner and the only-yes/no pattern give both columns of the section 4 table."""
    assert clean_yes_no(text) == expected
    assert is_only_yes_no(text) is only_yes_no


def test_urban_rural_tests_urban_first():
    """'miyi' is in both lists; urban is tested first, as in 2019."""
    assert clean_urban_rural("miyi") == "urban"
    assert clean_urban_rural("tuulo") == "rural"
    assert clean_urban_rural("nothing here") == "NC"


# --- age ---------------------------------------------------------------------------------------------------


def _age_2019(text: str) -> str:
    """How 2019 auto-coded an age from the core age, for the 2019 column of the table of 5.6: an integer 10..99,
    else NC (the pipeline codes with clean_age)."""
    age = core_age_2019(text)
    if age is None or not float(age).is_integer() or not 10 <= age < 100:
        return NC
    return str(int(age))


@pytest.mark.parametrize("text, core_age, age_2019, age_new", AGE_EXAMPLES)
def test_age_examples(text, core_age, age_2019, age_new):
    """Core age (noise rule), the 2019 auto-code and the new auto-code match every row of 5.6."""
    assert core_age_2019(text) == core_age
    assert _age_2019(text) == age_2019
    assert clean_age(text) == age_new


@pytest.mark.parametrize(
    "text, expected",
    [("9", "NC"), ("10", "10"), ("11", "11"), ("89", "89"), ("90", "90"), ("99", "99"), ("100", "NC"),
     ("05", "NC"), ("I am 10 years", "10"), ("99 sano", "99")],
)
def test_age_auto_coder_accepts_10_to_99(text, expected):
    """Digit ages from 10 to 99 are accepted, others are NC."""
    assert clean_age(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("afartan", "40"),
        ("toban iyo sideed", "18"),
        ("sideed iyo toban", "18"),
        ("TOBAN IYO SIDEED", "18"),
        ("toban iyo siddeed", "18"),
        ("toban iyo sagaal", "19"),
        ("labaatan iyo saddex", "23"),
        ("soddon iyo afar sano", "34"),
        ("konton", "50"),
        ("lixdan iyo kow", "61"),
        ("toddobaatan", "70"),
        ("siddeetan iyo shan", "85"),
        ("sagaashan iyo sagaal", "99"),
        ("sagaashan iyo toban", "NC"),
        ("twenty five", "25"),
        ("eighteen years", "18"),
        ("Thirteen", "13"),
        ("often", "NC"),
        ("sodon_shan", "35"),
        ("afartan,shan", "45"),
        ("labaatan iyo bar", "NC"),
        ("kow", "NC"),
        ("magacaygu waa cali", "NC"),
    ],
)
def test_age_number_words_are_read_as_whole_words(text, expected):
    """Somali and English number words are summed as whole words (5.5); parts of words never count."""
    assert clean_age(text) == expected


def test_every_age_vocabulary_word_has_its_value():
    """Each vocabulary word reads as its value: alone when 10 or more, after 'toban' (10) when less."""
    vocabulary = _data("somali_age_vocabulary.json")["words"]
    for entry in vocabulary:
        value = entry["value"]
        for word in entry["words"]:
            if value == 0.5:
                assert clean_age(f"toban iyo {word}") == "NC"
            elif value >= 10:
                assert clean_age(word) == str(value), word
            else:
                assert clean_age(f"toban iyo {word}") == str(10 + value), word


def test_digits_take_priority_over_words():
    """A two-digit number wins over number words; Unicode digits count as digits."""
    assert clean_age("25 afartan") == "25"
    assert clean_age("\u0662\u0665") == "25"
    assert clean_age("17 and 18") == "17"


def test_age_auto_code_is_always_a_scheme_match_value():
    """Every age the auto-coder can return is a MatchValue of the Age scheme."""
    age = load_code_scheme(SCHEME_DIR / "age.json")
    for n in range(0, 120):
        result = clean_age(str(n))
        if result != "NC":
            assert age.code_for_match_value(result).numeric_value == n


# --- locations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, sub_district, district", LOCATION_CLEANER_EXAMPLES)
def test_location_cleaner_examples(text, sub_district, district):
    """The sub-district and district cleaners give both columns of the section 7 examples."""
    assert clean_mogadishu_sub_district(text) == sub_district
    assert clean_somalia_district(text) == district


def test_district_cleaner_tries_mogadishu_last():
    """A text naming Mogadishu and another district gives the other district (mogadishu is tested last)."""
    assert clean_somalia_district("Mogadishu, Baidoa") == "baidoa"


# --- the pattern data --------------------------------------------------------------------------------------


def test_demographic_word_lists_are_complete():
    """Every list has the number of alternatives cleaners.md states."""
    data = _data("somali_demographic_patterns.json")
    assert len(data["noise"]) == 11
    assert len(data["only_yes_no"]) == 4
    assert [(c["code"], len(c["alternatives"])) for c in data["gender"]] == [("male", 60), ("female", 79)]
    assert [(c["code"], len(c["alternatives"])) for c in data["yes_no"]] == [("yes", 4), ("no", 7)]
    assert [(c["code"], len(c["alternatives"])) for c in data["urban_rural"]] == [("urban", 205), ("rural", 155)]
    assert [(e["value"], len(e["alternatives"])) for e in data["age_number_words_2019"]] == [
        (10, 4), (14, 1), (15, 2), (16, 1), (17, 3), (18, 1), (19, 1), (20, 2), (22, 1), (23, 1), (25, 1),
        (30, 4), (31, 1), (34, 1), (35, 1), (40, 2), (45, 1), (50, 2), (1, 3), (2, 2), (3, 2), (4, 3), (5, 2),
        (6, 2), (7, 2), (8, 2), (9, 2), (0.5, 1),
    ]
    assert data["age_digit_look_alikes"] == {
        "o": "0", "O": "0", "i": "1", "I": "1", "j": "1", "J": "1", "l": "1", "L": "1", "z": "2", "Z": "2",
        "t": "7", "T": "7",
    }


def test_age_vocabulary_is_complete():
    """The whole-word vocabulary has the 28 values and 84 words of 5.5, each word once."""
    vocabulary = _data("somali_age_vocabulary.json")["words"]
    words = [word for entry in vocabulary for word in entry["words"]]
    assert [entry["value"] for entry in vocabulary] == [*range(1, 20), 20, 30, 40, 50, 60, 70, 80, 90, 0.5]
    assert len(words) == 84 and len(set(words)) == 84
    assert {"sideed", "siddeed", "afartan", "toban", "kow", "sagaashan", "bar"} <= set(words)


SUB_DISTRICT_COUNTS = [
    ("boondheere", 2), ("cabdlcasiis", 8), ("daynile", 19), ("dharkenley", 32), ("heliwa", 13), ("hodan", 3),
    ("hawl wadaag", 17), ("karaan", 5), ("shangaani", 2), ("shibis", 2), ("waaberi", 4), ("wadajir", 11),
    ("wardhiigleey", 7), ("xamar jaabjab", 2), ("xamar weyne", 4), ("yaaqshid", 8),
]

DISTRICT_COUNTS = [
    ("adan yabaal", 2), ("afgooye", 34), ("afmadow", 8), ("baardheere", 24), ("badhaadhe", 3), ("baidoa", 35),
    ("baki", 5), ("balcad", 19), ("bandarbayla", 6), ("baraawe", 3), ("belet weyne", 75), ("belet xaawo", 16),
    ("berbera", 7), ("borama", 16), ("bossaso", 35), ("bu'aale", 4), ("bulo burto", 28), ("burco", 51),
    ("burtinle", 12), ("buuhoodle", 15), ("buur hakaba", 13), ("cabudwaaq", 58), ("cadaado", 23), ("cadale", 13),
    ("caluula", 6), ("caynabo", 8), ("ceel afweyn", 13), ("ceel barde", 1), ("ceel buur", 10), ("ceel dheer", 4),
    ("ceel waaq", 2), ("ceerigaabo", 38), ("dhuusamarreeb", 37), ("diinsoor", 1), ("doolow", 1), ("eyl", 3),
    ("gaalkacyo", 52), ("galdogob", 10), ("garbahaarey", 9), ("garowe", 18), ("gebiley", 20), ("hargeysa", 205),
    ("hobyo", 6), ("iskushuban", 6), ("jalalaqsi", 2), ("jamaame", 10), ("jariiban", 5), ("jowhar", 23),
    ("jilib", 2), ("kismayo", 34), ("kurtunwaarey", 8), ("laas caanood", 10), ("lasqooray", 12), ("lughaye", 2),
    ("luuq", 3), ("marka", 7), ("owdweyne", 7), ("qandala", 4), ("qansax dheere", 6), ("qardho", 36),
    ("qoryooley", 10), ("rab dhuure", 2), ("saakow", 2), ("sablaale", 1), ("sheikh", 8), ("taleex", 7),
    ("tayeeglow", 4), ("waajid", 2), ("wanla weyn", 4), ("xarardheere", 6), ("xudun", 6), ("xudur", 3),
    ("zeylac", 9), ("mogadishu", 88),
]


def test_location_pattern_lists_are_complete_and_in_order():
    """The sub-district (16) and district (74) cleaners have their codes, in order, with every alternative."""
    data = _data("somalia_location_patterns.json")
    assert [(c["code"], len(c["alternatives"])) for c in data["mogadishu_sub_district"]] == SUB_DISTRICT_COUNTS
    assert [(c["code"], len(c["alternatives"])) for c in data["somalia_district"]] == DISTRICT_COUNTS


def test_verbatim_oddities_are_kept():
    """Defective 2019 alternatives are kept character for character, as the spec requires."""
    demographic = _data("somali_demographic_patterns.json")
    locations = {c["code"]: c["alternatives"] for c in _data("somalia_location_patterns.json")["somalia_district"]}
    male, female = (c["alternatives"] for c in demographic["gender"])
    assert "brg\\b\\bmr\\b" in male
    assert {"ho+yada\\bna+k\\b", "caisha\\bdum\\b"} <= set(female)
    urban = demographic["urban_rural"][0]["alternatives"]
    assert "b[ae[l[ae]d\\s?we+yne" in urban
    assert locations["taleex"][0] == "t[e    a]leh"
    assert "be+yo\\nW*li+ba+n" in locations["gebiley"]
    assert "rako\\s(raxo|xaro)" in locations["qardho"]
    assert "^\\W*jma?\\W*$" in locations["jamaame"]


def test_noise_pattern_joins_to_the_2019_pattern():
    """Joining the eleven noise alternatives with '|' gives the 2019 pattern character for character."""
    noise = _data("somali_demographic_patterns.json")["noise"]
    assert "|".join(noise) == (
        r"^\W*(asc|ok)?\W*(ka+l?\W*ka+[kla]*|ka(la)?lak|kal)?\W*(asc|ok)?\W*$|^\W*330\W*$"
        r"|^\W*mahad\ssanid\W*$|^\W*in\W*[cs]ha+\W*a?l+a*h?(alah)?\W*$|^\W*oke?y?\W*$"
        r"|^\W*(ka+l?\W*ka+la?|kalaka?|kalalak)?\W*tir\W*tir\W*$|^\W*(hi|hello)\W*$|^\W*thanks\W*$"
        r"|^\w\w?$|^fuck$|^\W*dal\W*dhis\W*$"
    )


def test_data_files_carry_the_attribution():
    """Every data file and the NOTICE name CoreDataModules and its MIT License."""
    folder = resources.files("redss_pipeline").joinpath("data")
    for name in ("somali_demographic_patterns.json", "somalia_location_patterns.json", "somalia_locations.json",
                 "somalia_operators.json", "somali_age_vocabulary.json"):
        attribution = _data(name)["_attribution"]
        assert "AfricasVoices/CoreDataModules" in attribution and "MIT License" in attribution
    notice = folder.joinpath("NOTICE.txt").read_text("utf-8")
    assert "AfricasVoices/CoreDataModules" in notice and "Permission is hereby granted" in notice


# --- cleaners fit their schemes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "scheme_file, data_file, key",
    [
        ("gender.json", "somali_demographic_patterns.json", "gender"),
        ("idp_camp.json", "somali_demographic_patterns.json", "yes_no"),
        ("mogadishu_sub_district.json", "somalia_location_patterns.json", "mogadishu_sub_district"),
        ("district.json", "somalia_location_patterns.json", "somalia_district"),
    ],
)
def test_every_cleaner_code_has_a_scheme_code(scheme_file, data_file, key):
    """Each code a cleaner can return is a MatchValue of the scheme it codes, and every Normal code is reachable."""
    scheme = load_code_scheme(SCHEME_DIR / scheme_file)
    codes = [entry["code"] for entry in _data(data_file)[key]]
    assert sorted(codes) == sorted(code.match_values[0] for code in scheme.normal_codes)
    for code in codes:
        assert scheme.code_for_match_value(code).string_value == code


# --- registry, origin ids, caching -----------------------------------------------------------------------------


def test_registry_names_the_configurable_cleaners():
    """CLEANERS maps the configuration names to the cleaner functions."""
    assert {name: cleaner.clean for name, cleaner in CLEANERS.items()} == {
        "gender": clean_gender,
        "mogadishu_sub_district": clean_mogadishu_sub_district,
        "somalia_district": clean_somalia_district,
        "age": clean_age,
        "yes_no": clean_yes_no,
        "operator": clean_operator,
    }
    assert all(cleaner.name == name for name, cleaner in CLEANERS.items())
    assert CLEANERS["age"].clean("toban iyo sideed") == "18"
    assert tuple(CLEANERS) == CLEANER_NAMES  # the names the configuration accepts


def test_each_cleaners_results_are_declared_for_the_configuration_check():
    """What each cleaner can give besides NC (cleaners.md): the check asks a plan's scheme to hold all of them."""
    assert CLEANERS["yes_no"].possible_results() == {"yes", "no"}
    assert CLEANERS["gender"].possible_results() == {"male", "female"}
    assert CLEANERS["age"].possible_results() == {str(age) for age in range(10, 100)}
    assert len(CLEANERS["mogadishu_sub_district"].possible_results()) == 16
    assert len(CLEANERS["somalia_district"].possible_results()) == 74
    assert {"hormud", "somtel"} <= CLEANERS["operator"].possible_results()


def test_origin_ids_are_stable_names_with_a_version():
    """Each cleaner's origin id is redss_pipeline.cleaners.<name>@<version>."""
    assert cleaner_named("gender").origin_id == "redss_pipeline.cleaners.gender@1"
    assert {name: cleaner_named(name).origin_id for name in CLEANERS} == {
        name: f"redss_pipeline.cleaners.{name}@1" for name in CLEANERS
    }


def test_unknown_cleaner_name_is_a_config_error():
    """Asking for an unknown cleaner names it and lists the known ones."""
    with pytest.raises(ConfigError, match=r"unknown cleaner 'district'; known cleaners: gender, "):
        cleaner_named("district")


def test_cleaners_are_memoised_on_their_text():
    """Repeated texts are answered from the cache, not by running the patterns again."""
    clean_somalia_district.cache_clear()
    texts = [f"Baidoa {i}" for i in range(50)]
    for _ in range(100):
        for text in texts:
            assert clean_somalia_district(text) == "baidoa"
    info = clean_somalia_district.cache_info()
    assert (info.misses, info.hits) == (50, 4950)


def test_importing_cleaners_reads_no_data():
    """The pattern files are read on the first call, not at import."""
    script = (
        "import redss_pipeline.generate.cleaners as c, redss_pipeline.generate.locations as l, redss_pipeline.deidentify.operators as o\n"
        "print(c._rules.cache_info().currsize, l.location_hierarchy.cache_info().currsize,"
        " o.operator_prefixes.cache_info().currsize)\n"
        "c.clean_gender('m')\n"
        "print(c._rules.cache_info().currsize)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["0", "0", "0", "1"]


def test_public_names_are_all_exported():
    """__all__ names every public function and constant of the module, and each exists."""
    assert all(hasattr(cleaners_module, name) for name in cleaners_module.__all__)
    public_functions = {
        name for name, value in vars(cleaners_module).items()
        if callable(value) and not name.startswith("_")
        and getattr(value, "__module__", None) == cleaners_module.__name__
    }
    assert public_functions <= set(cleaners_module.__all__)
