import pytest

from stages.llm.json_extract import extract_field


@pytest.mark.parametrize("text, expected", [
    ('{"question": "hey, what time is it?"}', "hey, what time is it?"),
    ('  {\n "question" : "so, um, why?"\n}\n', "so, um, why?"),
    ('```json\n{"question": "fenced"}\n```', "fenced"),
    ('Sure! Here it is: {"question": "with chatter"} Hope that helps.', "with chatter"),
    ("{'question': 'single quotes'}", "single quotes"),
    ('{"question": "trailing comma",}', "trailing comma"),
    ('[{"other": 1}, {"question": "in a list"}]', "in a list"),
    ('{"question": "escaped \\"quote\\" inside"}', 'escaped "quote" inside'),
])
def test_the_field_is_found_in_messy_answers(text, expected):
    assert extract_field(text, "question") == expected


@pytest.mark.parametrize("text", [
    "",
    "no json here at all",
    '{"response": "the wrong key"}',
    '{"question": ""}',
    '{"question": "   "}',
    '{"question": 42}',
    '{"question": ["a", "list"]}',
    "null",
])
def test_no_usable_field_is_none(text):
    assert extract_field(text, "question") is None
