"""Deterministic "text for speech" normalization.

``normalize_for_speech`` runs after LLM generation and rewrites text so that a
TTS can read every character: numbers, dates, times, money, units and symbols
become words; markdown, emoji and brackets go away; lines become sentences.
The result is one line of letters and . , ? ! ' " - : ; and running it again
changes nothing.

Choices worth knowing:

* URLs and e-mail addresses are *spoken*, reduced to what a listener needs:
  a URL becomes its host ("https://www.example.com/a?b=1" -> "example dot
  com"); scheme, "www.", path and query are dropped. An e-mail address is read
  in full ("jane.doe@example.org" -> "jane dot doe at example dot org").
  Bare domains are recognised only for a short list of endings (_URL_TLDS).
* A four-digit number is read as a year only in a year context ("in 1999",
  "since 2010", "March 2021", "1990s", "1066 AD", "1939-1945"); otherwise it
  is a cardinal ("1999 people" -> "one thousand nine hundred ninety-nine").
* "h:mm:ss" without am/pm is a duration ("2:03:45" -> "two hours, three minutes and
  forty-five seconds"); "h:mm" is a clock time.
* Number words follow American style, without "and" or commas
  ("one hundred five"); "007" and numbers over 15 digits are read digit by digit.
* Slash dates are read month first (US) unless the first field cannot be a
  month ("14/3/2015"); "3/14" without a year is a fraction.
* An unspaced hyphen between two numbers is a range ("5-10" -> "five to
  ten"); a spaced one is subtraction ("5 - 3" -> "five minus three").
* Times keep "AM"/"PM" as capitals, which TTS engines read as letters.
* A newline ends a sentence unless the next line starts in lower case (a
  wrapped line). List items and headings always end with a period.
* Letters of any script are kept; the validator decides whether the text is
  speakable English. Anything else left at the end is removed.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable

from num2words import num2words

from .validate import SPEAKABLE_PUNCTUATION

# --------------------------------------------------------------------------
# Word tables
# --------------------------------------------------------------------------

MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]
_MONTH_BY_PREFIX = {m[:3]: m for m in MONTHS} | {"Sept": "September"} | {m: m for m in MONTHS}

# symbol: (singular, plural)
UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "m/s": ("meter per second", "meters per second"),
    "mph": ("mile per hour", "miles per hour"),
    "kph": ("kilometer per hour", "kilometers per hour"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "yd": ("yard", "yards"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pounds", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "mL": ("milliliter", "milliliters"),
    "L": ("liter", "liters"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
    "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"),
    "secs": ("seconds", "seconds"),
    "s": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "mins": ("minutes", "minutes"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hours", "hours"),
    "kcal": ("kilocalorie", "kilocalories"),
    "cal": ("calorie", "calories"),
    "kWh": ("kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatts"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
    "mAh": ("milliamp hour", "milliamp hours"),
    "GHz": ("gigahertz", "gigahertz"),
    "MHz": ("megahertz", "megahertz"),
    "Hz": ("hertz", "hertz"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "in": ("inch", "inches"),
    "tbsp": ("tablespoon", "tablespoons"),
    "tsp": ("teaspoon", "teaspoons"),
    "kbps": ("kilobit per second", "kilobits per second"),
    "Mbps": ("megabit per second", "megabits per second"),
    "Gbps": ("gigabit per second", "gigabits per second"),
    "Mb": ("megabit", "megabits"),
    "Gb": ("gigabit", "gigabits"),
    "fps": ("frame per second", "frames per second"),
    "dB": ("decibel", "decibels"),
    "bpm": ("beat per minute", "beats per minute"),
    "rpm": ("revolution per minute", "revolutions per minute"),
}
# Read as a unit only when glued to the number or ending the sentence ("3 in a row" is not inches).
_UNITS_GLUED_OR_FINAL = {"in"}
_UNIT_PATTERN = "|".join(re.escape(u) for u in sorted(UNITS, key=len, reverse=True))
# Too ambiguous when glued to the number ("5s" is also "the 5s").
_UNITS_NEEDING_SPACE = {"s"}

# symbol: (singular, plural, minor singular, minor plural)
CURRENCIES = {
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
    "¥": ("yen", "yen", None, None),
    "₹": ("rupee", "rupees", "paisa", "paise"),
}
_SCALES = {
    "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion",
    "k": "thousand", "K": "thousand", "m": "million", "M": "million", "mn": "million",
    "bn": "billion", "B": "billion", "tn": "trillion", "T": "trillion",
}

# Symbols spoken once numbers are done; the rest are dropped at the end.
SYMBOL_WORDS = {
    "&": "and", "+": "plus", "=": "equals", "@": "at", "%": "percent",
    "°": "degrees", "<": "less than", ">": "greater than",
    "≤": "less than or equal to", "≥": "greater than or equal to",
    "≠": "not equal to", "×": "times", "÷": "divided by",
    "$": "dollars", "€": "euros", "£": "pounds",
}

# (pattern, spoken form, period may also end the sentence)
ABBREVIATIONS = [
    (r"(?i:\be\.g\.)", "for example", False),
    (r"(?i:\bi\.e\.)", "that is", False),
    (r"(?i:\ba\.k\.a\.)", "also known as", False),
    (r"(?i:\betc\.)", "et cetera", True),
    (r"(?i:\bapprox\.)", "approximately", True),
    (r"\bvs\b\.?", "versus", False),
    (r"\bcf\.", "compare", False),
]
TITLES = {
    "Dr": "Doctor", "Mr": "Mister", "Mrs": "Missus", "Ms": "Miz",
    "Prof": "Professor", "Jr": "Junior", "Sr": "Senior",
    "Capt": "Captain", "Gen": "General", "Sgt": "Sergeant", "Lt": "Lieutenant", "Col": "Colonel",
    "Gov": "Governor", "Sen": "Senator", "Rev": "Reverend", "Supt": "Superintendent",
}
# Street-name endings, read in full after a capitalized word.
STREETS = {"St": "Street", "Ave": "Avenue", "Blvd": "Boulevard", "Rd": "Road", "Ln": "Lane"}
# Before a number.
NUMBER_PREFIXES = {"p": "page", "pp": "pages", "vol": "volume", "ch": "chapter", "ext": "extension",
                   "No": "number", "Fig": "Figure"}

_URL_TLDS = r"com|org|net|edu|gov|io|ai|dev|app|info|co\.uk|org\.uk"

# --------------------------------------------------------------------------
# Number words
# --------------------------------------------------------------------------

_INT = r"\d{1,3}(?:,\d{3})+|\d+"
_NUM = rf"(?:{_INT})(?:\.\d+)?"
_START = r"(?<![\w.])"  # a number must not continue a word or another number


def _tidy(words: str) -> str:
    # num2words writes British "one hundred and five" with commas.
    return words.replace(",", "").replace(" and ", " ")


def cardinal(n: int) -> str:
    return _tidy(num2words(n))


def ordinal(n: int) -> str:
    return _tidy(num2words(n, to="ordinal"))


def year_words(n: int) -> str:
    return _tidy(num2words(n, to="year"))


def _digits(digits: str) -> str:
    return " ".join(cardinal(int(d)) for d in digits)


def _say_integer(digits: str) -> str:
    digits = digits.replace(",", "")
    # Codes such as "007" and very long numbers are read digit by digit.
    if (len(digits) > 1 and digits[0] == "0") or len(digits) > 15:
        return _digits(digits)
    return cardinal(int(digits))


def say_number(number: str) -> str:
    """Words for "-1,234.05", "3.14", ".5" and the like."""
    negative = number.startswith("-")
    whole, _, fraction = number.lstrip("-").partition(".")
    words = _say_integer(whole) if whole else ""
    if fraction:
        words = f"{words} point {_digits(fraction)}".strip()
    return f"minus {words}" if negative else words


def _is_one(number: str) -> bool:
    return number.lstrip("-") == "1"


def _pluralize(words: str) -> str:
    if words.endswith("y"):
        return words[:-1] + "ies"
    return words + "s"


def _sentence_end(match: re.Match[str]) -> str:
    """A period a match swallowed, returned when it also ended the sentence."""
    rest = match.string[match.end():]
    if match.group(0).endswith(".") and re.match(r"\s*$|\s+[A-Z]", rest):
        return "."
    return ""


def _sub(pattern: str, repl: Callable[[re.Match[str]], str], text: str, flags: int = 0) -> str:
    return re.sub(pattern, repl, text, flags=flags)


# --------------------------------------------------------------------------
# Unicode, emoji
# --------------------------------------------------------------------------

_EMOJI = re.compile(
    "[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF"
    "\uFE0E\uFE0F\u200D\u20E3\U000E0020-\U000E007F]"
)
_SUPERSCRIPTS = "⁰¹²³⁴⁵⁶⁷⁸⁹"
_VULGAR_FRACTIONS = "½⅓⅔¼¾⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"


def _superscript(match: re.Match[str]) -> str:
    power = "".join(str(_SUPERSCRIPTS.index(c)) for c in match.group(2))
    base = match.group(1)
    if power == "2":
        return f"{base} squared "
    if power == "3":
        return f"{base} cubed "
    if base.isalpha():  # "word¹" is a footnote marker
        return base
    return f"{base} to the power of {power} "


_INLINE_TAG = re.compile(
    r"</?(?:b|i|u|em|strong|small|big|sub|sup|span|font|a|p|br|hr|div|mark|code|tt|s|strike|del|ins)"
    r"(?:\s[^<>]*)?/?>|<!--.*?-->",
    re.IGNORECASE | re.DOTALL,
)


def _unescape_html(text: str) -> str:
    """HTML entities become characters and inline tags go ("&lt;b&gt;" is a tag once unescaped)."""
    return _INLINE_TAG.sub("", html.unescape(text))


def _clean_unicode(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = re.sub(r"(?<!\S)<3+(?![\d.])", "love", text)
    text = re.sub(r"©|\(c\)(?=\s*\d{4})", " copyright ", text)
    text = _EMOJI.sub(" ", text)
    text = re.sub(r"[\u200B\u200C\u2060\uFEFF]", "", text)
    text = re.sub(rf"(\w|\))([{_SUPERSCRIPTS}]+)", _superscript, text)
    text = re.sub(rf"(?<=\d)(?=[{_VULGAR_FRACTIONS}])", " ", text)
    text = unicodedata.normalize("NFKC", text)
    # Digits of other scripts ("٣") become ASCII digits.
    text = "".join(
        str(unicodedata.decimal(c)) if not c.isascii() and unicodedata.decimal(c, None) is not None else c
        for c in text
    )
    text = text.replace("\u2044", "/").replace("…", "...")
    text = re.sub("[\u201C\u201D\u201E\u00AB\u00BB]", '"', text)
    text = re.sub("[\u2018\u2019\u201A\u00B4]", "'", text)
    text = re.sub("[\u2010\u2011\u2212]", "-", text)
    text = re.sub(r"(?<=\d)\s*[\u2013\u2014]\s*(?=[\d$€£])", "-", text)
    text = re.sub(r"^(\s*)[\u2013\u2014](?=\s)", r"\1-", text, flags=re.M)  # dash bullets
    text = re.sub(r"\s*[\u2013\u2014]\s*", ", ", text)
    return text


# --------------------------------------------------------------------------
# Markdown and lines
# --------------------------------------------------------------------------

_ITEM_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
_RULE = re.compile(r"^\s*([-*_=])(?:\s*\1){2,}\s*$")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_TERMINAL = re.compile(r"[.!?:;][\"')\]]*$")


def _strip_inline_markdown(line: str) -> str:
    line = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", line)  # images -> alt text
    line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)  # links -> their text
    line = re.sub(r"<((?:https?://|mailto:)[^>\s]+)>", r"\1", line)
    line = re.sub(r"`+([^`]*)`+", r"\1", line)
    line = re.sub(r"(?<![\w*])(\*{1,3})(?=\S)(.+?)(?<=\S)\1(?![\w*])", r"\2", line)
    line = re.sub(r"(?<!\w)(_{1,3})(?=\S)(.+?)(?<=\S)\1(?!\w)", r"\2", line)
    line = re.sub(r"~~(.+?)~~", r"\1", line)
    return line


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:]


def _parse_line(raw: str) -> tuple[str, bool] | None:
    """(content, is_item) for a line; None for a line that only separates."""
    if raw.lstrip().startswith("```") or _RULE.match(raw):
        return None
    if _TABLE_ROW.match(raw):
        if re.fullmatch(r"[\s|:-]+", raw):
            return None
        cells = [c.strip() for c in raw.strip().strip("|").split("|")]
        return _capitalize(", ".join(_strip_inline_markdown(c) for c in cells if c)), True
    heading = _HEADING.match(raw)
    if heading:
        return _strip_inline_markdown(heading.group(1)), True
    raw = re.sub(r"^\s*(?:>\s?)+", "", raw)
    is_item = bool(_ITEM_MARKER.match(raw))
    content = _strip_inline_markdown(_ITEM_MARKER.sub("", raw, count=1)).strip()
    return (_capitalize(content) if is_item else content), is_item


def _end_sentence(line: str) -> str:
    if _TERMINAL.search(line):
        return line
    return line.rstrip(",") + "."


_FENCE = re.compile(r"^\s*(```|~~~)")


def _drop_code_blocks(raw_lines: list[str]) -> list[str]:
    """Fenced code is not read aloud: a listener cannot follow it symbol by symbol."""
    kept, fence = [], None
    for raw in raw_lines:
        opening = _FENCE.match(raw)
        if fence is None and opening and raw.strip().count(opening.group(1)) == 1:
            fence = opening.group(1)
        elif fence is not None:
            if raw.strip().startswith(fence):
                fence = None
        else:
            kept.append(raw)
    return kept


def _lines_to_sentences(text: str) -> str:
    """Markdown blocks and newlines become plain sentences on one line."""
    lines = [_parse_line(raw) for raw in _drop_code_blocks(text.split("\n"))]
    lines = [line if line and line[0] else None for line in lines]
    last = max((i for i, line in enumerate(lines) if line), default=-1)
    out: list[str] = []
    for i, line in enumerate(lines):
        if line is None:
            continue
        content, is_item = line
        if out and _TERMINAL.search(out[-1]):
            content = _capitalize(content)
        nxt = lines[i + 1] if i < last else None
        # A line that runs on in lower case was most likely wrapped mid-sentence.
        continues = nxt is not None and not nxt[1] and nxt[0][:1].islower()
        if is_item or (i < last and not continues):
            content = _end_sentence(content)
        out.append(content)
    return " ".join(out)


# --------------------------------------------------------------------------
# URLs, e-mail, abbreviations
# --------------------------------------------------------------------------

def _spell_out_address(part: str) -> str:
    names = {".": " dot ", "_": " underscore ", "-": " dash ", "+": " plus "}
    return "".join(names.get(c, c) for c in part)


def _speak_url(match: re.Match[str]) -> str:
    host = re.sub(r"^(?:https?://)?(?:www\.)?", "", match.group(0), flags=re.IGNORECASE)
    host = re.split(r"[/?#:]", host)[0]
    return _spell_out_address(host.lower())


def _speak_email(match: re.Match[str]) -> str:
    user, _, domain = match.group(0).partition("@")
    return f"{_spell_out_address(user)} at {_spell_out_address(domain.lower())}"


def _urls_and_emails(text: str) -> str:
    text = re.sub(r"\bmailto:", "", text)
    text = _sub(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", _speak_email, text)
    text = _sub(r"\b(?:https?://|www\.)[^\s<>\"']+?(?=[.,;:!?)\]]*(?:\s|$))", _speak_url, text, re.I)
    bare_domain = rf"\b[\w-]+(?:\.[\w-]+)*\.(?:{_URL_TLDS})(?![^\W\d_])"
    text = _sub(rf"{bare_domain}(?:/[^\s]*?(?=[.,;:!?)]*(?:\s|$)))?", _speak_url, text, re.I)
    return text


def _abbreviations(text: str) -> str:
    """Runs late, once symbols are gone, so that a second pass finds nothing new."""
    for pattern, spoken, may_end_sentence in ABBREVIATIONS:
        def repl(m: re.Match[str], spoken: str = spoken, end: bool = may_end_sentence) -> str:
            return f" {spoken}{_sentence_end(m) if end else ''} "
        text = _sub(pattern, repl, text)
    titles = "|".join(TITLES)
    text = _sub(rf"\b({titles})\.(?=\s)", lambda m: TITLES[m.group(1)], text)
    text = re.sub(r"\bSt\.(?=\s+[A-Z])", "Saint", text)
    streets = "|".join(STREETS)
    text = _sub(rf"\b([A-Z][a-z]+ )({streets})\.",
                lambda m: m.group(1) + STREETS[m.group(2)] + _sentence_end(m), text)
    return re.sub(r"\bMt\.(?=\s+[A-Z])", "Mount", text)


def _prefix_words(text: str) -> str:
    """Abbreviations and symbols whose meaning depends on what follows them."""
    prefixes = "|".join(NUMBER_PREFIXES)
    text = re.sub(rf"\b({prefixes})\.\s*(?=\d)", lambda m: f"{NUMBER_PREFIXES[m.group(1)]} ", text)
    text = re.sub(r"\bw/o(?=\s)", "without", text)
    text = re.sub(r"\bw/(?=\s)", "with", text)
    text = re.sub(r"\b([A-Z]{1,3})&([A-Z]{1,3})\b", r"\1 and \2", text)  # AT&T, Q&A
    text = re.sub(r"(?<=[A-Za-z])#", " sharp", text)  # C#, F#
    text = re.sub(r"#\s?(?=\d)", "number ", text)
    text = re.sub(r"~\s?(?=[\d$€£.])", "about ", text)
    text = text.replace("±", " plus or minus ").replace("≈", " approximately ")
    text = re.sub(r"\s*(?:->|=>|→)\s*", " to ", text)
    text = re.sub(r"\band/or\b", "and or", text)
    return text



# --------------------------------------------------------------------------
# Written forms read before plain numbers: Roman numerals, phones, versions,
# scientific notation, scale suffixes, video resolutions
# --------------------------------------------------------------------------

_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
# A numeral after one of these is a number ("World War II", "Chapter IV").
_ROMAN_COUNTED = (
    r"War|Chapter|Part|Type|Phase|Episode|Act|Scene|Volume|Vol|Book|Section|Article|Level|Stage|Class"
    r"|Grade|Title|Appendix|Apollo|Bowl|Gemini|Vatican|Fantasy|Rocky|Mark|Round|Season|Series|Division|Tier"
)
# A numeral after one of these names is a regnal number ("Henry VIII" -> "Henry the eighth").
_REGNAL_NAMES = (
    r"Henry|Elizabeth|George|Edward|William|Charles|James|Louis|Richard|John|Paul|Pius|Leo|Benedict"
    r"|Gregory|Peter|Catherine|Philip|Frederick|Ferdinand|Alexander|Nicholas|Napoleon|Mary|Victor|Francis"
    r"|Innocent|Clement|Urban|Alfonso|Carlos|Juan|Gustav|Gustavus|Ramesses|Ptolemy|Constantine|Otto|Ivan"
    r"|Felipe|Harald|Olaf|Christian|Frederik|Willem|Wilhelm|Anne|Stephen|Malcolm|David|Robert|Selim"
    r"|Suleiman|Mehmed|Murad|Amenhotep|Thutmose|Sobhuza|Rama|Sancho|Boniface|Sixtus|Honorius|Edmund|Harold"
)


def _roman_value(numeral: str) -> int | None:
    values = [_ROMAN_VALUES[c] for c in numeral]
    total = sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))
    # Only the canonical spelling counts: "IIII" or "VX" are not numerals.
    return total if 0 < total < 4000 and _to_roman(total) == numeral else None


def _to_roman(n: int) -> str:
    out = []
    for value, letters in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                           (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        while n >= value:
            out.append(letters)
            n -= value
    return "".join(out)


def _roman_numerals(text: str) -> str:
    def regnal(m: re.Match[str]) -> str:
        value = _roman_value(m.group(2))
        return f"{m.group(1)} the {ordinal(value)}" if value else m.group(0)

    def counted(m: re.Match[str]) -> str:
        value = _roman_value(m.group(2))
        return f"{m.group(1)} {cardinal(value)}" if value else m.group(0)

    numeral = r"([IVXLCDM]+)(?![\w'-])"
    text = _sub(rf"\b((?:{_REGNAL_NAMES})\.?)\s+{numeral}", regnal, text)
    text = _sub(rf"\b({_ROMAN_COUNTED})\s+{numeral}", counted, text)
    # Elsewhere only numerals of two or more of I, V, X after a capitalized word ("Final Fantasy
    # VII"); "XL", "CD" or "MIX" are more likely letters.
    return _sub(r"\b([A-Z][a-z]+)\s+([IVX]{2,})(?![\w'-])", counted, text)


def _phone_digits(groups: list[str]) -> str:
    return ", ".join(_digits(g) for g in groups if g)


_PHONE_CONTEXT = r"(?i:\b(?:call|phone|fax|text|dial|tel|line is|number is|reach (?:me|us) at)\W{0,2}\s*)"


def _telephones(text: str) -> str:
    """Phone numbers are read digit by digit in their groups; emergency numbers too."""
    text = _sub(r"(?<![\w+])\+(\d{1,3})((?:[\s.-]\(?\d{1,4}\)?){2,4})(?![\w.-]?\d)",
                lambda m: "plus " + _phone_digits([m.group(1)] + re.findall(r"\d+", m.group(2))), text)
    text = _sub(r"(?<![\w.-])(?:(1)-)?(?:\((\d{3})\)\s?|(\d{3})([-.]))(\d{3})[-.](\d{4})(?![\w.-]?\d)",
                lambda m: _phone_digits([m.group(1), m.group(2) or m.group(3), m.group(5), m.group(6)]), text)
    text = _sub(rf"({_PHONE_CONTEXT})(\d{{3}})-(\d{{4}})(?![\w.-]?\d)",
                lambda m: m.group(1) + _phone_digits([m.group(2), m.group(3)]), text)
    text = _sub(rf"({_PHONE_CONTEXT})(999|112)\b(?![.,]\d)", lambda m: m.group(1) + _digits(m.group(2)), text)
    return _sub(r"(?<![\w.,/-])911(?![\w/]|[.,]\d)", lambda m: _digits("911"), text)


_VERSIONED = (
    r"version|Version|v|V|Python|iOS|macOS|OS X|Node|Java|Ubuntu|Debian|Fedora|TLS|SSL|USB|Bluetooth|Android"
    r"|Windows|Web|Ruby|PHP|Perl|Rust|Django|React|Angular|Vue|Firefox|Chrome|Kubernetes|Swift|Kotlin|Scala"
    r"|Wi-Fi|Linux|Rails|Go|Excel|Office|Photoshop|Unity|Unreal|Qt|GTK|OpenGL|DirectX|Vulkan|CUDA|PostgreSQL"
)


def _version_words(version: str) -> str:
    return " point ".join(_say_integer(part) for part in version.split("."))


def _versions(text: str) -> str:
    text = re.sub(r"\b([A-Z]{2,})/(\d)(?![\w/])", r"\1 \2", text)  # HTTP/2
    return _sub(rf"\b({_VERSIONED})(\s?)(\d+(?:\.\d+)+)(?![\w.]?\d)",
                lambda m: f"{'version' if m.group(1) in ('v', 'V') else m.group(1)} {_version_words(m.group(3))}",
                text)


def _scientific(text: str) -> str:
    def power(m: re.Match[str]) -> str:
        exponent = int(m.group(2))
        words = f"ten to the {'minus ' if exponent < 0 else ''}{ordinal(abs(exponent))}"
        return words if m.group(1) == "1" and exponent > 0 else f"{say_number(m.group(1))} times {words}"

    return _sub(r"(?<![\w.])(\d+(?:\.\d+)?)[eE]([+-]?\d{1,3})(?![\w.])", power, text)


def _resolutions(text: str) -> str:
    """"1080p" is "ten eighty p", "720p" is "seven twenty p"."""
    def read(m: re.Match[str]) -> str:
        digits = m.group(1)
        words = year_words(int(digits)) if len(digits) == 4 else f"{cardinal(int(digits[0]))} {cardinal(int(digits[1:]))}"
        return f"{words} {m.group(2)}"

    return _sub(r"(?<![\w.])(\d[1-9]\d|1\d{3}|2160|4320)([pi])\b", read, text)


_SCALE_SUFFIX = {"k": "thousand", "K": "thousand", "M": "million", "mn": "million", "B": "billion",
                 "bn": "billion", "T": "trillion", "tn": "trillion"}


def _scale_suffixes(text: str) -> str:
    """"100k views", "1.5M users": the suffix is a scale word. "4K" and "8K" stay screen sizes."""
    def read(m: re.Match[str]) -> str:
        if m.group(2) == "K" and m.group(1) in ("2", "4", "5", "8"):
            return m.group(0)
        return f"{m.group(1)} {_SCALE_SUFFIX[m.group(2)]}"

    return _sub(r"(?<![\w.$€£¥₹])(\d+(?:\.\d+)?)(k|K|M|mn|B|bn|T|tn)(?![\w'])", read, text)

# --------------------------------------------------------------------------
# Dates and times
# --------------------------------------------------------------------------

_MONTH = (
    r"(January|February|March|April|May|June|July|August|September|October|November|December"
    r"|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\.?)"
)


def _month_name(token: str) -> str:
    token = token.rstrip(".")
    return _MONTH_BY_PREFIX.get(token) or _MONTH_BY_PREFIX[token[:3]]


def _year_or_short(year: str) -> str:
    if len(year) == 2:
        return f"oh {cardinal(int(year[1]))}" if year[0] == "0" else cardinal(int(year))
    return year_words(int(year))


def _date_words(month: int, day: int, year: str | None) -> str:
    words = f"{MONTHS[month - 1]} {ordinal(day)}"
    return f"{words}, {_year_or_short(year)}" if year else words


def _iso_date(m: re.Match[str]) -> str:
    year, month, day = m.group(1), int(m.group(2)), int(m.group(3))
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return _date_words(month, day, year)


def _slash_date(m: re.Match[str]) -> str:
    first, second, year = int(m.group(1)), int(m.group(2)), m.group(3)
    month, day = (first, second) if first <= 12 else (second, first)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return m.group(0)
    return _date_words(month, day, year)


def _month_day(m: re.Match[str]) -> str:
    day = int(m.group(2))
    if not 1 <= day <= 31:
        return m.group(0)
    words = f"{_month_name(m.group(1))} {ordinal(day)}"
    return f"{words}, {year_words(int(m.group(3)))}" if m.group(3) else words


def _day_month(m: re.Match[str]) -> str:
    day = int(m.group(1))
    if not 1 <= day <= 31:
        return m.group(0)
    already_has_the = re.search(r"\bthe\s+$", m.string[:m.start()], re.I)
    words = f"{'' if already_has_the else 'the '}{ordinal(day)} of {_month_name(m.group(2))}"
    if m.group(3):
        words += f", {year_words(int(m.group(3)))}"
    return words + _sentence_end(m)


def _dates(text: str) -> str:
    text = _sub(r"(?<![\w.-])(\d{4})-(\d{2})-(\d{2})(?![\w-])", _iso_date, text)
    text = _sub(r"(?<![\w./])(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})(?![\w/])", _slash_date, text)
    text = _sub(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?(?![\w:/]|[.,]\d)",
                _month_day, text)
    text = _sub(rf"{_START}(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?!\w)(?:,?\s+(\d{{4}})(?!\w))?",
                _day_month, text)
    text = _sub(rf"\b{_MONTH},?\s+(\d{{4}})\b",
                lambda m: f"{_month_name(m.group(1))} {year_words(int(m.group(2)))}", text)
    return text


def _count(n: int, unit: str) -> str:
    return f"{cardinal(n)} {unit}{'' if n == 1 else 's'}"


def _duration(hours: int, minutes: int, seconds: int) -> str:
    """h:mm:ss without am/pm is a duration in running text (a race, a video), not a clock time."""
    parts = [_count(n, unit) for n, unit in ((hours, "hour"), (minutes, "minute"), (seconds, "second")) if n]
    if not parts:
        return "zero seconds"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _clock(m: re.Match[str]) -> str:
    hour, minute, second, meridiem = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    if second and not meridiem:
        return _duration(hour, int(minute), int(second))
    if hour > 23 or (meridiem and not 1 <= hour <= 12):
        return m.group(0)
    words = cardinal(hour)
    if minute is None or minute == "00":
        if not meridiem and minute is not None:
            words += " o'clock" if 1 <= hour <= 12 else " hundred"
    elif minute.startswith("0"):
        words += f" oh {cardinal(int(minute))}"
    else:
        words += f" {cardinal(int(minute))}"
    if second:
        words += f" and {cardinal(int(second))} second{'' if second == '01' else 's'}"
    if meridiem:
        words += f" {meridiem.upper()}M" + _sentence_end(m)
    return words


def _hour_only(m: re.Match[str]) -> str:
    hour = int(m.group(1))
    if not 1 <= hour <= 12:
        return m.group(0)
    return f"{cardinal(hour)} {m.group(2).upper()}M" + _sentence_end(m)


def _times(text: str) -> str:
    meridiem = r"(?:\s*([ap])\.?m\b\.?)"
    text = re.sub(r"(?<=\d:\d\d)\s?[-–]\s?(?=\d{1,2}:\d\d)", " to ", text)
    text = _sub(rf"(?<![\w.:])(\d{{1,2}}):([0-5]\d)(?::([0-5]\d))?{meridiem}?(?![\w:])",
                _clock, text, re.I)
    return _sub(rf"(?<![\w.:])(\d{{1,2}}){meridiem}", _hour_only, text, re.I)


# --------------------------------------------------------------------------
# Ranges, money, percentages, units, math
# --------------------------------------------------------------------------

def _looks_like_year_span(a: str, b: str) -> bool:
    return (len(a) == len(b) == 4 and 1100 <= int(a) < int(b) <= 2099
            and int(b) - int(a) <= 150)


def _range(m: re.Match[str]) -> str:
    a, b = m.group(1), m.group(2)
    following = m.string[m.end():]
    followed_by_unit = re.match(rf"\s?(?:{_UNIT_PATTERN})(?!\w)|\s?%", following)
    if _looks_like_year_span(a, b) and not followed_by_unit:
        return f"{year_words(int(a))} to {year_words(int(b))}"
    return f"{a} to {b}"


def _ranges(text: str) -> str:
    money = "[$€£¥₹]"
    text = re.sub(rf"(?<![\w.])({money})({_NUM})\s*-\s*\1?(?=\d)", r"\1\2 to \1", text)
    return _sub(rf"(?<![\w.,/-])({_NUM})-({_NUM})(?!,\d|[./-]?\d)", _range, text)


def _money(sign: str | None, symbol: str, amount: str, scale_token: str | None = None) -> str:
    scale = _SCALES.get(scale_token or "")
    one, many, minor_one, minor_many = CURRENCIES[symbol]
    minus = "minus " if sign else ""
    if scale:
        return f"{minus}{say_number(amount)} {scale} {many}"
    whole, _, fraction = amount.replace(",", "").partition(".")
    if fraction and (len(fraction) > 2 or minor_one is None):
        return f"{minus}{say_number(amount)} {many}"
    parts = []
    if int(whole or 0) or not fraction:
        parts.append(f"{_say_integer(whole)} {one if whole == '1' else many}")
    cents = int(fraction.ljust(2, "0")) if fraction else 0
    if cents:
        parts.append(f"{cardinal(cents)} {minor_one if cents == 1 else minor_many}")
    if not parts:
        parts.append(f"zero {many}")
    return minus + " and ".join(parts)


_CURRENCY_CODES = {"USD": "US dollars", "EUR": "euros", "GBP": "British pounds", "JPY": "yen",
                   "CAD": "Canadian dollars", "AUD": "Australian dollars", "INR": "rupees"}


def _currency(text: str) -> str:
    symbols = "".join(re.escape(s) for s in CURRENCIES)
    text = re.sub(rf"(?<![\w.-])([{symbols}])-(?=\d)", r"-\1", text)  # "$-5" is "-$5"
    codes = "|".join(_CURRENCY_CODES)
    text = _sub(rf"{_START}(-?{_NUM})\s?({codes})\b|\b({codes})\s?(-?{_NUM})(?!\d)",
                lambda m: f"{say_number(m.group(1) or m.group(4))} {_CURRENCY_CODES[m.group(2) or m.group(3)]}", text)
    scale = r"(?:\s+(thousand|million|billion|trillion)\b|(k|K|M|mn|m|bn|B|tn|T)(?!\w))"
    text = _sub(rf"(?<![\w.])(-)?([{symbols}])\s?({_NUM}|\.\d+){scale}?",
                lambda m: _money(m.group(1), m.group(2), m.group(3), m.group(4) or m.group(5)), text)
    text = _sub(rf"{_START}(\d+)\s?¢", lambda m: _count(int(m.group(1)), "cent"), text)
    # Symbol after the amount: "5€", "20 £".
    return _sub(rf"{_START}(-)?({_NUM})\s?([{symbols}])(?!\w)",
                lambda m: _money(m.group(1), m.group(3), m.group(2)), text)


def _percentages(text: str) -> str:
    return _sub(rf"{_START}(-?{_NUM})\s?%", lambda m: f"{say_number(m.group(1))} percent", text)


def _unit(m: re.Match[str]) -> str:
    number, space, unit = m.group(1), m.group(2), m.group(3)
    if unit in _UNITS_NEEDING_SPACE and not space:
        return m.group(0)  # decades and seconds are told apart later, with the years
    if unit in _UNITS_GLUED_OR_FINAL and space and not re.match(r"\.(?:\s*$|\s+[A-Z])", m.string[m.end():]):
        return m.group(0)
    singular, plural = UNITS[unit]
    return f"{say_number(number)} {singular if _is_one(number) else plural}"


def _feet_and_inches(m: re.Match[str]) -> str:
    feet, inches = m.group(1), m.group(2)
    return (f"{say_number(feet)} {'foot' if _is_one(feet) else 'feet'} "
            f"{say_number(inches)} {'inch' if _is_one(inches) else 'inches'}")


_AREA_UNITS = "km|cm|mm|mi|ft|yd|in|m"


def _areas(text: str) -> str:
    """"50 km²" and "100 sq ft" are square kilometers and square feet (runs before superscripts)."""
    def area(m: re.Match[str]) -> str:
        unit = m.group(2) or m.group(3)
        singular, plural = UNITS[unit]
        return f"{m.group(1)} square {singular if _is_one(m.group(1)) else plural}"

    return _sub(rf"{_START}(-?{_NUM})\s?(?:sq\.?\s?({_AREA_UNITS})|({_AREA_UNITS})²)(?![\w²])", area, text)


def _units(text: str) -> str:
    text = _sub(rf"{_START}(\d+)'\s?(\d+(?:\.\d+)?)\"", _feet_and_inches, text)
    text = _sub(rf"{_START}(-?{_NUM})(\s?)({_UNIT_PATTERN})(?!\w|/(?!{_UNIT_PATTERN}))", _unit, text)
    # "$5/kg", "per lb": a unit without its own number is read in the singular.
    text = _sub(rf"(?<=\w)\s?/\s?({_UNIT_PATTERN})(?![\w/])", lambda m: f" per {UNITS[m.group(1)][0]}", text)
    return _sub(rf"\bper ({_UNIT_PATTERN})(?![\w/])", lambda m: f"per {UNITS[m.group(1)][0]}", text)


def _math(text: str) -> str:
    text = re.sub(r"(?<=\d)\s*[x×*]\s*(?=-?\d)", " times ", text)
    text = re.sub(r"(?<=\d)[x×](?=\s+[a-z])", " times", text)
    text = re.sub(r"(?<=[\w)])\s*\^\s*(?=[\w(-])", " to the power of ", text)
    text = re.sub(r"(?<=\d) - (?=\d)", " minus ", text)
    text = re.sub(r"(?<=\d) / (?=\d)", " divided by ", text)
    return _sub(r"(?<![\w.:])(\d+):(\d+)(?![\w:])", lambda m: f"{m.group(1)} to {m.group(2)}", text)


# --------------------------------------------------------------------------
# Years, ordinals, fractions, plain numbers
# --------------------------------------------------------------------------

_YEAR_CONTEXT = (r"in|since|by|from|until|till|through|during|before|after|circa|around"
                 r"|year|early|mid|late|summer|winter|spring|fall|autumn")


def _year_in_context(m: re.Match[str]) -> str:
    first, joiner, second = m.group(2), m.group(3), m.group(4)
    if not 1000 <= int(first) <= 2099:
        return m.group(0)
    words = f"{m.group(1)} {year_words(int(first))}"
    if second and 1000 <= int(second) <= 2099:
        words += f"{joiner}{year_words(int(second))}"
    elif second:
        words += f"{joiner}{second}"
    return words


# "in his 20s", "late 80s", "90s music" are decades; "wait 30s and go" is not.
_DECADE_BEFORE = "his|her|their|its|my|your|our|early|mid|late|and|or|to"
_NOT_A_DECADE_AFTER = r"(?:and|or|to|before|after|later|ago|for|of|in|each|per|long|left|until|then)\b"


def _decade(m: re.Match[str]) -> str:
    return _pluralize(year_words(int(m.group(1))))


def _years(text: str) -> str:
    text = _sub(r"(?<![\w.])(\d{3}0)s\b", _decade, text)
    text = _sub(r"(?:'|(?<=\bthe )|(?<=\bmid-))(\d0)s\b",
                lambda m: _pluralize(cardinal(int(m.group(1)))), text)
    text = _sub(rf"\b((?i:{_DECADE_BEFORE}) )([2-9]0)s\b",
                lambda m: m.group(1) + _pluralize(cardinal(int(m.group(2)))), text)
    text = _sub(rf"(?<![\w.$'])([2-9]0)s(?= (?!{_NOT_A_DECADE_AFTER})[a-z])",
                lambda m: _pluralize(cardinal(int(m.group(1)))), text)
    # What is left glued to an "s" is seconds ("5s", "30s").
    text = _sub(r"(?<![\w.])(\d+(?:\.\d+)?)s\b", lambda m: f"{m.group(1)} {'second' if _is_one(m.group(1)) else 'seconds'}", text)
    second_year = r"(?:(\s+(?:to|and|or|through|until)\s+)(\d{4}))?"
    text = _sub(rf"\b({_YEAR_CONTEXT})\s+(\d{{4}}){second_year}(?![\w]|[.,]\d)", _year_in_context, text, re.I)
    text = _sub(r"(?<![\w.])(\d{3,4})\s?(BCE|BC|AD|CE)\b",
                lambda m: f"{year_words(int(m.group(1)))} {m.group(2)}", text)
    return _sub(r"\b(AD)\s?(\d{3,4})\b", lambda m: f"{m.group(1)} {year_words(int(m.group(2)))}", text)


def _ordinals(text: str) -> str:
    return _sub(rf"{_START}({_INT})(?:st|nd|rd|th)\b",
                lambda m: ordinal(int(m.group(1).replace(",", ""))), text, re.I)


def _fraction_words(numerator: int, denominator: int, article: bool = False) -> str:
    if denominator == 2:
        name = "half" if numerator == 1 else "halves"
    elif denominator == 4:
        name = "quarter" if numerator == 1 else "quarters"
    else:
        name = ordinal(denominator) + ("" if numerator == 1 else "s")
    count = "a" if article and numerator == 1 else cardinal(numerator)
    return f"{count} {name}"


def _fraction(m: re.Match[str]) -> str:
    whole, numerator, denominator = m.group(1), int(m.group(2)), int(m.group(3))
    # "10/2" is not "ten halves": large improper fractions and large denominators are read "over".
    if denominator < 2 or denominator > 16 or (numerator >= 10 and numerator > denominator):
        prefix = f"{say_number(whole)} " if whole else ""
        return f"{prefix}{cardinal(numerator)} over {cardinal(denominator)}"
    if whole:
        return f"{say_number(whole)} and {_fraction_words(numerator, denominator, article=True)}"
    return _fraction_words(numerator, denominator)


def _fractions(text: str) -> str:
    text = re.sub(r"\b24/7\b", "twenty-four seven", text)
    text = re.sub(r"\b50/50\b", "fifty-fifty", text)
    end = r"(?![\w/]|\.\d)"
    text = _sub(rf"(?<![\w./])(-?\d+)\s+(\d+)/(\d+){end}",
                lambda m: _fraction(m) if int(m.group(2)) < int(m.group(3)) else m.group(0), text)
    return _sub(rf"(?<![\w./])()(\d+)/(\d+){end}", _fraction, text)


def _plain_numbers(text: str) -> str:
    text = _sub(r"(?<![\w.])\d+(?:\.\d+){2,}(?![\w.]?\d)",
                lambda m: " point ".join(_say_integer(p) for p in m.group(0).split(".")), text)
    text = re.sub(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])", " ", text)  # "B12", "3D"
    text = _sub(rf"(?<![\w.)\]])(-?{_NUM}|\.\d+)(?!\d)", lambda m: say_number(m.group(1)), text)
    # Whatever is left (e.g. "end.5") is read as bare integers.
    return _sub(r"\d+", lambda m: f" {_say_integer(m.group(0))} ", text)


# --------------------------------------------------------------------------
# Symbols, brackets, final clean-up
# --------------------------------------------------------------------------

def _symbols(text: str) -> str:
    text = re.sub(r"(?<=[^\W\d_])/(?=[^\W\d_])", " or ", text)
    for symbol, word in SYMBOL_WORDS.items():
        text = text.replace(symbol, f" {word} ")
    return text.replace("_", " ")


def _brackets(text: str) -> str:
    """Bracketed asides are kept and set off with commas."""
    pattern = r"\s*[(\[{]\s*([^()\[\]{}]*?)\s*[)\]}]"
    while True:
        new = re.sub(pattern, lambda m: f", {m.group(1)}, " if m.group(1) else " ", text)
        if new == text:
            return text
        text = new


def _drop_unspeakable(text: str) -> str:
    return "".join(c if c.isalpha() or c in SPEAKABLE_PUNCTUATION else " " for c in text)


_PUNCTUATION_FIXES = [
    (r"\s+-+\s+|-{2,}", ", "),  # dashes used as pauses
    (r"\s+([,.;:!?])", r"\1"),
    (r",+([;:])|[,;:]+([.!?])", r"\1\2"),  # the stronger stop wins
    (r"([.!?])[,;:]+|([;:]),+", r"\1\2"),
    (r",{2,}", ","),
    (r"^[\s,;:.!?]+|^-+(?=\s)", ""),
    (r"[\s,;]+$", ""),
    (r"([,;:!?])(?=[^\W\d_])", r"\1 "),
    (r" {2,}", " "),
]


def _tidy_punctuation(text: str) -> str:
    while True:
        new = text
        for pattern, repl in _PUNCTUATION_FIXES:
            new = re.sub(pattern, repl, new)
        new = new.strip()
        if new == text:
            return text
        text = new


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------

# Markup, addresses and names first: every later step sees plain sentences.
_FIRST_STEPS: list[Callable[[str], str]] = [
    _unescape_html,
    _areas,
    _clean_unicode,
    _lines_to_sentences,
    _urls_and_emails,
    _prefix_words,
    _roman_numerals,
]

_STEPS: list[Callable[[str], str]] = [
    *_FIRST_STEPS,
    _telephones,
    _versions,
    _scientific,
    _resolutions,
    _scale_suffixes,
    _dates,
    _times,
    _ranges,
    _currency,
    _percentages,
    _math,
    _units,
    _years,
    _ordinals,
    _fractions,
    _plain_numbers,
    _symbols,
    _brackets,
    _drop_unspeakable,
    _tidy_punctuation,
    # Addresses and abbreviations glued to symbols or digits only show up now.
    _urls_and_emails,
    _abbreviations,
    _tidy_punctuation,
]


def normalize_for_speech(text: str) -> str:
    """Rewrite LLM output so that a TTS can read all of it aloud."""
    for step in _STEPS:
        text = step(text)
    return text


# Steps the hybrid normalizer runs before NeMo: markup and the written forms NeMo misreads.
BEFORE_NEMO: list[Callable[[str], str]] = [
    *_FIRST_STEPS,
    _versions,
    _scientific,
    _resolutions,
    _scale_suffixes,
]
