"""The commands the docs show: every `make TARGET [ARGS="..."]`, `instructs2s ...`,
`python -m pipeline ...` and `python -m omni.train|infer|evaluate ...` in README.md, docs/, omni/README.md
and the comments of conf/, as (file, line, program, arguments)."""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", "docs/*.md", "omni/README.md", "conf/**/*.yaml", "Makefile"]

# A command runs to the end of its code span, a table cell, a comment, a gap of two spaces (an
# aligned note beside it) or the line.
COMMAND = re.compile(r"(?:^|[\s(])((?:make|instructs2s|python -m (?:pipeline|omni\.train|omni\.infer|omni\.evaluate))"
                     r"(?=\s|$)(?:[^|#\n ]| (?! ))*)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
ELLIPSIS = "..."


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    program: str  # make, instructs2s, pipeline, omni.train, omni.infer, omni.evaluate
    args: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.where}: {self.program} {' '.join(self.args)}"


def doc_files(repo: Path = REPO) -> list[Path]:
    return sorted({p for pattern in DOCS for p in repo.glob(pattern) if p.is_file()})


def code_text(path: Path, text: str) -> list[tuple[int, str]]:
    """What can hold a command: code blocks and code spans of Markdown; comments of YAML and Makefiles."""
    lines, out, fenced = text.splitlines(), [], False
    for number, line in enumerate(lines, 1):
        if path.suffix != ".md":
            if "#" in line:
                out.append((number, line[line.index("#") + 1:]))
        elif line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            out.append((number, line))
        else:
            out += [(number, span) for span in CODE_SPAN.findall(line)]
    return out


def commands_in(text: str, name: str, path: Path | None = None) -> list[DocCommand]:
    found = []
    for number, line in code_text(path or Path(name), text):
        for match in COMMAND.finditer(line):
            for raw in re.split(r"&&|;", match.group(1).strip().rstrip(".,:)")):
                if ELLIPSIS in raw or not raw.strip():
                    continue  # an elided example, not a command to run
                words = shlex.split(raw)
                program, args = (words[2], words[3:]) if words[:2] == ["python", "-m"] else (words[0], words[1:])
                if program == "instructs2s" and (not args or args[0].isupper()):
                    continue  # the command's name in prose, or a template such as `instructs2s COMMAND`
                found.append(DocCommand(f"{name}:{number}", program, tuple(args)))
    return found


def all_doc_commands(repo: Path = REPO) -> list[DocCommand]:
    out = []
    for path in doc_files(repo):
        out += commands_in(path.read_text(encoding="utf-8"), str(path.relative_to(repo)), path)
    return out
