import pytest

from rules.grid_codes import (
    GRID_TYPES, GridCode, InvalidDivisionCode, InvalidGridCode, check_division_code, division_level,
    household_warning,
)

EXAMPLE = "410702001001U001"   # the engine's tests and demo use this code


def test_the_example_parses_into_its_segments():
    code = GridCode.parse(EXAMPLE)
    assert (code.province, code.city, code.county, code.township, code.community) == ("41", "07", "02", "001", "001")
    assert (code.grid_type, code.sequence) == ("U", 1)
    assert (code.county_code, code.township_code, code.community_code) == ("410702", "410702001", "410702001001")
    assert code.type_name == "城市社区网格"
    assert str(code) == EXAMPLE


@pytest.mark.parametrize("text", ["410702001001U001", "410702100201R012", "419001001001E999", "110101001001U001"])
def test_str_gives_back_the_canonical_form(text):
    assert str(GridCode.parse(text)) == text


def test_codes_are_values():
    assert GridCode.parse(EXAMPLE) == GridCode("41", "07", "02", "001", "001", "U", 1)
    assert len({GridCode.parse(EXAMPLE), GridCode.parse(EXAMPLE)}) == 1
    assert sorted(map(GridCode.parse, ["410702001002U001", "410702001001U002", "410702001001U001"])) == \
        list(map(GridCode.parse, ["410702001001U001", "410702001001U002", "410702001002U001"]))


@pytest.mark.parametrize("text, reason", [
    ("41070200100U001", "15 characters, a grid code has 16"),
    ("410702001001U0001", "17 characters"),
    ("", "0 characters"),
    ("4107020010O1U001", "must be digits; found 'O' at 11"),
    ("４10702001001U001", "found '４' at 1"),                        # a full-width digit from an IME
    ("410702001001UA01", "the sequence (characters 14–16) must be digits; found 'A' at 14"),
    ("410702001001X001", "unknown grid type 'X'; known: U (城市社区网格), R (农村网格), E (专属网格)"),
    ("410702001001u001", "grid type 'u' must be upper case: U"),
    ("410702001001U000", "sequence 000: grids are numbered from 001"),
    ("000702001001U001", "province 00 is not a mainland province-level code"),
    ("810702001001U001", "province 81 is not a mainland"),
    ("410002001001U001", "city segment 00 (characters 3–4) is all zeros"),
    ("410700001001U001", "county segment 00 (characters 5–6) is all zeros, which names the level above"),
    ("410702000001U001", "township segment 000 (characters 7–9)"),
    ("410702001000U001", "community segment 000 (characters 10–12)"),
])
def test_each_rule_says_what_is_wrong(text, reason):
    with pytest.raises(InvalidGridCode) as caught:
        GridCode.parse(text)
    assert isinstance(caught.value, ValueError)
    assert reason in str(caught.value)
    assert caught.value.text == text


def test_every_problem_is_reported_not_only_the_first():
    with pytest.raises(InvalidGridCode) as caught:
        GridCode.parse("410700000001X000")
    assert len(caught.value.problems) == 4   # county, township, type letter, sequence


@pytest.mark.parametrize("text", [" 410702001001U001", "410702001001U001\n", 410702001001])
def test_parse_takes_the_code_exactly_as_written(text):
    with pytest.raises(InvalidGridCode):
        GridCode.parse(text)


@pytest.mark.parametrize("fields, reason", [
    (("41", "07", "02", "001", "001", "U", 0), "sequence must be a whole number 1–999"),
    (("41", "07", "02", "001", "001", "U", 1000), "sequence must be"),
    (("41", "07", "02", "001", "001", "U", True), "sequence must be"),
    (("41", "07", "2", "001", "001", "U", 1), "county must be 2 digits"),
    (("41", "07", "02", "001", 1, "U", 1), "community must be 3 digits"),
    (("41", "07", "00", "001", "001", "U", 1), "county segment 00"),
    (("41", "07", "02", "001", "001", "Z", 1), "unknown grid type 'Z'"),
])
def test_a_code_built_by_hand_follows_the_same_format(fields, reason):
    with pytest.raises(InvalidGridCode, match=reason):
        GridCode(*fields)


@pytest.mark.parametrize("text, level", [("410702", "county"), ("410702001", "township"),
                                         ("410702001001", "community")])
def test_division_codes(text, level):
    assert check_division_code(text) == text
    assert division_level(text) == level


@pytest.mark.parametrize("text, reason", [
    ("4107", "4 characters"), ("410702001001U001", "16 characters"), ("41070A", "found 'A' at 6"),
    ("410700", "county segment 00"), ("410702000", "township segment 000"), ("*", "1 characters"),
])
def test_bad_division_codes(text, reason):
    with pytest.raises(InvalidDivisionCode, match=reason):
        check_division_code(text)


# --- household count (条例 §8) ----------------------------------------------------------------------------------

@pytest.mark.parametrize("households", [300, 400, 500])
def test_an_urban_grid_of_300_to_500_households_is_fine(households):
    assert household_warning("U", households) is None


@pytest.mark.parametrize("households, word", [(299, "below"), (0, "below"), (501, "above"), (1200, "above")])
def test_an_urban_grid_outside_300_to_500_households_is_warned(households, word):
    warning = household_warning("U", households)
    assert warning is not None and word in warning
    assert f"{households} households" in warning and "条例 §8" in warning and "300–500" in warning


@pytest.mark.parametrize("grid_type", ["R", "E"])
def test_other_grid_types_have_no_household_norm(grid_type):
    assert household_warning(grid_type, 20) is None and household_warning(grid_type, 5000) is None


@pytest.mark.parametrize("grid_type, households", [("X", 400), ("u", 400), ("U", -1), ("U", 4.5), ("U", True)])
def test_household_warning_refuses_nonsense(grid_type, households):
    with pytest.raises(ValueError):
        household_warning(grid_type, households)


def test_the_grid_types_are_those_of_the_regulation():
    assert GRID_TYPES == {"U": "城市社区网格", "R": "农村网格", "E": "专属网格"}
