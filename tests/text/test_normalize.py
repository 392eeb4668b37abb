import random
import re

import pytest

from stages.text.normalize import normalize_for_speech
from stages.text.validate import leftover_unreadable

CASES = [
    # cardinals, negatives, decimals
    ("I have 3 apples.", "I have three apples."),
    ("There are 1,234 people.", "There are one thousand two hundred thirty-four people."),
    ("50,000,000 and 1,000,000,000,000", "fifty million and one trillion"),
    ("Room 101", "Room one hundred one"),
    ("It is -5 outside.", "It is minus five outside."),
    ("Temps: -3 to -1.", "Temps: minus three to minus one."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("0.5 and .5 and -0.5", "zero point five and point five and minus zero point five"),
    ("Agent 007", "Agent zero zero seven"),
    ("Use version 2.0 now.", "Use version two point zero now."),
    ("Python 3.11.2 is out.", "Python three point eleven point two is out."),
    ("1,234,567.891", "one million two hundred thirty-four thousand five hundred sixty-seven point eight nine one"),
    ("٣ apples", "three apples"),
    # ordinals
    ("The 1st and 22nd places.", "The first and twenty-second places."),
    ("the 3rd, 4th and 101st", "the third, fourth and one hundred first"),
    ("the 1,000th visitor", "the one thousandth visitor"),
    # currency
    ("It costs $5.", "It costs five dollars."),
    ("Only $1.", "Only one dollar."),
    ("$5.50", "five dollars and fifty cents"),
    ("$0.99", "ninety-nine cents"),
    ("$1.01", "one dollar and one cent"),
    ("$.99", "ninety-nine cents"),
    ("¥500 and ₹1,000.50", "five hundred yen and one thousand rupees and fifty paise"),
    ("$1,250", "one thousand two hundred fifty dollars"),
    ("€20", "twenty euros"),
    ("£3.75", "three pounds and seventy-five pence"),
    ("5€", "five euros"),
    ("The deal was $1.5 million.", "The deal was one point five million dollars."),
    ("$2bn and $5k and $3B", "two billion dollars and five thousand dollars and three billion dollars"),
    ("lost -$5", "lost minus five dollars"),
    ("$5-$10", "five dollars to ten dollars"),
    ("$5/kg", "five dollars per kilogram"),
    # percentages
    ("50% off", "fifty percent off"),
    ("a 3.5% rate", "a three point five percent rate"),
    ("down -2%", "down minus two percent"),
    ("5-10%", "five to ten percent"),
    # years and decades
    ("In 1999, he left.", "In nineteen ninety-nine, he left."),
    ("1999 people came.", "one thousand nine hundred ninety-nine people came."),
    ("since 2010", "since twenty ten"),
    ("by 2005", "by two thousand five"),
    ("from 1990 to 2000", "from nineteen ninety to two thousand"),
    ("World War II (1939-1945) changed everything.",
     "World War two, nineteen thirty-nine to nineteen forty-five, changed everything."),
    ("1200-1500 calories", "one thousand two hundred to one thousand five hundred calories"),
    ("The 1990s and the '80s and the 1800s.", "The nineteen nineties and the eighties and the eighteen hundreds."),
    ("1066 AD and 500 BC", "ten sixty-six AD and five hundred BC"),
    # dates
    ("On March 3, 2021 we met.", "On March third, twenty twenty-one we met."),
    ("March 3rd", "March third"),
    ("Born 3/14/2015.", "Born March fourteenth, twenty fifteen."),
    ("A 13/4/2021 date", "A April thirteenth, twenty twenty-one date"),
    ("Due 2021-03-04.", "Due March fourth, twenty twenty-one."),
    ("On Jan. 5 and Sept 9, 2020.", "On January fifth and September ninth, twenty twenty."),
    ("the 3rd of May", "the third of May"),
    ("5 June 2020", "the fifth of June, twenty twenty"),
    ("June 2020", "June twenty twenty"),
    # times
    ("Meet at 3:30 pm. Then go.", "Meet at three thirty PM. Then go."),
    ("Meet at 14:05 today.", "Meet at fourteen oh five today."),
    ("at 12:00", "at twelve o'clock"),
    ("at 18:00", "at eighteen hundred"),
    ("3:05 PM", "three oh five PM"),
    ("Meet at 7 a.m.", "Meet at seven AM."),
    ("11 a.m. or 3pm", "eleven AM or three PM"),
    ("at 00:30", "at zero thirty"),
    # units
    ("It is 5 km away.", "It is five kilometers away."),
    ("1 km", "one kilometer"),
    ("weighs 10 kg", "weighs ten kilograms"),
    ("1.5 kg", "one point five kilograms"),
    ("goes 60 mph", "goes sixty miles per hour"),
    ("160 km/h", "one hundred sixty kilometers per hour"),
    ("It is 5°C.", "It is five degrees Celsius."),
    ("-5°C to 10°F", "minus five degrees Celsius to ten degrees Fahrenheit"),
    ("3 ft tall", "three feet tall"),
    ("He is 5'10\".", "He is five feet ten inches."),
    ("100m and 16GB", "one hundred meters and sixteen gigabytes"),
    ("in 25 min", "in twenty-five minutes"),
    ("a 90° turn", "a ninety degrees turn"),
    ("Drink 2 L daily", "Drink two liters daily"),
    ("sold per lb", "sold per pound"),
    # ranges, fractions, math
    ("Wait 5-10 minutes.", "Wait five to ten minutes."),
    ("5-10 km", "five to ten kilometers"),
    ("Pages 10–20", "Pages ten to twenty"),
    ("He scored 3-2.", "He scored three to two."),
    ("Add 1/2 cup.", "Add one half cup."),
    ("2 1/2 spoons", "two and a half spoons"),
    ("1/3, 2/3, 3/4, 3/8", "one third, two thirds, three quarters, three eighths"),
    ("5/1000", "five over one thousand"),
    ("1½ cups", "one and a half cups"),
    ("open 24/7", "open twenty-four seven"),
    ("3 x 4", "three times four"),
    ("2*3*4", "two times three times four"),
    ("1920x1080", "one thousand nine hundred twenty times one thousand eighty"),
    ("2x faster", "two times faster"),
    ("5 - 3 = 2", "five minus three equals two"),
    ("6 / 2", "six divided by two"),
    ("2^10", "two to the power of ten"),
    ("x² + y³", "x squared plus y cubed"),
    ("10⁶", "ten to the power of six"),
    ("a 16:9 screen", "a sixteen to nine screen"),
    # abbreviations
    ("Use tools, e.g. hammers, i.e. heavy ones, etc. Then stop.",
     "Use tools, for example hammers, that is heavy ones, et cetera. Then stop."),
    ("apples, pears, etc.", "apples, pears, et cetera."),
    ("Dr. Smith vs. Mr. Jones", "Doctor Smith versus Mister Jones"),
    ("Mrs. Lee and Prof. Kim", "Missus Lee and Professor Kim"),
    ("See Fig. 3 and No. 5", "See Figure three and number five"),
    ("tea w/ sugar", "tea with sugar"),
    ("The U.S. is big.", "The U.S. is big."),
    # symbols
    ("A & B", "A and B"),
    ("3 + 4 = 7", "three plus four equals seven"),
    ("meet @home", "meet at home"),
    ("my #1 fan", "my number one fan"),
    ("C# and C++", "C sharp and C plus plus"),
    ("about ~5 km", "about about five kilometers"),
    ("±2", "plus or minus two"),
    ("5 → 6", "five to six"),
    ("x ≥ 3", "x greater than or equal to three"),
    ("yes/no and and/or", "yes or no and and or"),
    ("#hashtag", "hashtag"),
    ("snake_case", "snake case"),
    # letters next to digits
    ("mp3 and B12 and COVID-19 and 3D", "mp three and B twelve and COVID-nineteen and three D"),
    # markdown
    ("# Heading\nSome **bold** and *italic* text.", "Heading. Some bold and italic text."),
    ("Run `make test` now.", "Run make test now."),
    ("The [docs](https://docs.example.com) say 42.", "The docs say forty-two."),
    ("![an image](pic.png)", "an image"),
    ("Tips:\n- drink water\n- sleep well", "Tips: Drink water. Sleep well."),
    ("1. Mix the flour.\n2. Add eggs\n3. bake", "Mix the flour. Add eggs. Bake."),
    ("* star item\n+ plus item\n  - nested item", "Star item. Plus item. Nested item."),
    ("## Title ##\ntext here", "Title. Text here"),
    ("> A quote here\n> continued", "A quote here continued"),
    ("Intro\n\n---\n\nBody", "Intro. Body"),
    ("| a | b |\n|---|---|\n| x | y |", "A, b. X, y."),
    ("~~old~~ new", "old new"),
    ("**Note:** Drink 2 L of water (about 8 cups) daily!",
     "Note: Drink two liters of water, about eight cups, daily!"),
    # brackets
    ("He left (finally).", "He left, finally."),
    ("He left (finally) and (I think) never came back.",
     "He left, finally, and, I think, never came back."),
    ("(Note) read this", "Note, read this"),
    ("a [b] c", "a, b, c"),
    # emoji
    ("Great job 🎉👍!", "Great job!"),
    ("Flags 🇺🇸 and family 👨‍👩‍👧.", "Flags and family."),
    ("I ❤️ it", "I it"),
    # URLs and e-mail
    ("Visit https://www.example.com/path?q=1 today.", "Visit example dot com today."),
    ("See www.google.com.", "See google dot com."),
    ("Visit openai.com/blog for more.", "Visit openai dot com for more."),
    ("<https://example.com>", "example dot com"),
    ("Mail jane.doe@example.org.", "Mail jane dot doe at example dot org."),
    ("Email: JOHN_SMITH+news@Mail.Example.co.uk",
     "Email: JOHN underscore SMITH plus news at mail dot example dot co dot uk"),
    # whitespace, dashes, quotes, line breaks
    ("  lots   of\tspace  ", "lots of space"),
    ("Line one\nLine two", "Line one. Line two"),
    ("Roses are red,\nviolets are blue", "Roses are red, violets are blue"),
    ("First line.\r\nSecond line.", "First line. Second line."),
    ("Hello — world – again", "Hello, world, again"),
    ("wait -- what", "wait, what"),
    ("I'm “quoted” and ‘single’.", "I'm \"quoted\" and 'single'."),
    ("Wait... what?!", "Wait... what?!"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_normalize_exact(text, expected):
    assert normalize_for_speech(text) == expected


def test_enough_cases():
    assert len(CASES) >= 80


# Messy inputs for the property checks, including the table above.
CORPUS = [text for text, _ in CASES] + [
    "1.2. end.5 5..6 1,2,3 1,23 3:1:2 1e10 0x1F 5' ² 10^-3 9/11 3/4/5/6",
    "12:60 25:00 - $ 1. ...5 5. #5 No.5 1-2-3 555-123-4567",
    "99999999999999999999 and +5 and ১২ oranges",
    "3.0.1-beta and v2 and 1.x and 2020-13-45 and 0/0/2020 and 99/99/9999",
    "in 1999.5 and by 3000 and since 999 and the 5th-6th centuries",
    "```python\nprint(1)\n```",
    "## 10 tips for 2024\n1) wake at 6:00\n2) run 5km (3.1 mi)\n3) eat 2,000 kcal\n",
    "| Year | Sales |\n|------|------:|\n| 2021 | $1.2M |\n| 2022 | $3,400 |",
    "Ratio 3:1, 4K video at 60fps, 5G, 1080p, A4 paper, Q3 2023, H2O, CO2 ≈ 415 ppm.",
    "Call +1 (555) 010-9999 ext. 42 or text 911.",
    "He said: \"I'll pay 20% — maybe 25%!\" (really?) [sic] {x}",
    "Prices: ¥500, ₹1,000.50, $-3, €0.5, £1 million, $.99",
    "Temps 30°, 5 °F; -40°C = -40°F; 1/0; 0/1; 1 2/3",
    "Emoji soup 🤖✨🔥💯 1️⃣ 2️⃣ #️⃣ ©2024 ™ ®",
    "tabs\tand\nnewlines\n\n\nand  spaces  ",
]


@pytest.mark.parametrize("text", CORPUS)
def test_output_has_no_digits(text):
    assert not re.search(r"\d", normalize_for_speech(text))


@pytest.mark.parametrize("text", CORPUS)
def test_output_is_readable_by_the_validator(text):
    out = normalize_for_speech(text)
    # Only letters and basic punctuation are left (every input here is Latin script).
    assert leftover_unreadable(out) is None, out


@pytest.mark.parametrize("text", CORPUS)
def test_idempotent(text):
    once = normalize_for_speech(text)
    assert normalize_for_speech(once) == once


@pytest.mark.parametrize("text", CORPUS)
def test_single_line_without_edge_whitespace(text):
    out = normalize_for_speech(text)
    assert "\n" not in out
    assert out == out.strip()
    assert "  " not in out


# Pieces that interact badly when glued together: symbols next to digits, abbreviations and addresses.
_PIECES = [
    "1", "23", "1999", "3.5", "$", "€", "%", "-", "/", ":", "x", " ", "\n", "\n\n", "- ", "# ", "1. ", "(", ")",
    "[", "]", "*", "**", "_", "`", "km", "s", "pm", "a.m.", "March", "May", "the", "in", "e.g.", "etc.", "Dr.",
    "'", '"', ",", ".", "!", "?", ";", "🎉", "²", "½", "&", "+", "=", "@", "#", "°C", "www.a.com", "a@b.com",
    "http://x.org/p", "st", "th", "k", "M", "AD", "—", "–", "...", "|", "~", "^", "<", ">",
]


def _random_texts(count, seed=20240601):
    rng = random.Random(seed)
    return ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def test_random_glued_inputs_are_digit_free_readable_and_stable():
    for text in _random_texts(400):
        once = normalize_for_speech(text)
        assert leftover_unreadable(once) is None, (text, once)
        assert normalize_for_speech(once) == once, text


def test_plain_sentence_is_unchanged():
    text = "The quick brown fox jumps over the lazy dog."
    assert normalize_for_speech(text) == text
