#!/usr/bin/env python3
"""Keeps the man pages (and bash completions) in step with --help.

    package_manpage_check.py options PROGRAM MANPAGE [COMPLETION]
    package_manpage_check.py lint MANPAGE...

options: runs "PROGRAM --help" and checks, both ways,
  - every option of --help (usage line and option column) has an entry in
    the man page's OPTIONS section, with the same argument name;
  - the man page's SYNOPSIS names the options of the usage line;
  - the labels and URLs of the "servers:" section are in SERVERS, and the
    numbers of the "exit status:" section are the entries of EXIT STATUS
    (for the sections --help has);
  - COMPLETION, sourced in bash, offers exactly the options of --help for
    a lone "-".

lint: formats each page with groff (-ww) and man (--warnings) and fails on
any warning or on a rendered line wider than MANWIDTH (80).  Exits 77
(skipped) when neither groff nor man is installed.

Python 3 standard library only.
"""

import os
import re
import shutil
import subprocess
import sys

SKIP = 77
MANWIDTH = 80

# "--max_req" and "--http1.1" are whole options; a '.' counts only between
# word characters, so that "--help." at the end of a sentence is "--help".
OPTION_RE = re.compile(r"(?<![\w-])(--?[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9]))*)")


class Problems:
    def __init__(self):
        self.items = []

    def add(self, msg):
        self.items.append(msg)

    def report(self, what):
        for msg in self.items:
            print(f"FAIL: {msg}", file=sys.stderr)
        if self.items:
            print(f"{what}: {len(self.items)} problem(s)", file=sys.stderr)
            return 1
        print(f"{what}: ok")
        return 0


# --- --help -----------------------------------------------------------------


def parse_help(text):
    """Returns (usage_options, columns, sections) of a --help text.

    usage_options: the set of options named in the usage block (the lines up
    to the first blank one).  columns: {option: argument name or None} from
    the lines whose first column starts with '-' ("  -m CONCURRENT   text").
    sections: {"servers": [lines], ...} for lines under a "name:" heading.
    """
    lines = text.splitlines()
    usage = []
    for line in lines:
        if not line.strip():
            break
        usage.append(line)
    usage_text = " ".join(usage)
    if not usage_text.lower().startswith("usage:"):
        raise ValueError("--help does not start with a usage line")
    usage_options = set(OPTION_RE.findall(usage_text.split(":", 1)[1]))

    columns = {}
    sections = {}
    current = None
    for line in lines[len(usage):]:
        heading = re.match(r"^([A-Za-z][A-Za-z ]*):\s*$", line)
        if heading:
            current = heading.group(1).lower()
            sections[current] = []
            continue
        if current is not None and line.strip():
            sections[current].append(line)
        m = re.match(r"^\s+(-\S.*?)(?:\s{2,}|$)", line)
        if m:
            for opt, arg in split_option_column(m.group(1)):
                columns[opt] = arg
    return usage_options, columns, sections


def split_option_column(column):
    """"-h, --help" -> [(-h, None), (--help, None)]; "-m N" -> [(-m, N)]."""
    out = []
    for spec in column.split(","):
        parts = spec.split()
        if not parts or not OPTION_RE.fullmatch(parts[0]):
            continue
        arg = " ".join(parts[1:]) or None
        if arg is None and "=" in parts[0]:
            name, arg = parts[0].split("=", 1)
            out.append((name, arg))
            continue
        out.append((parts[0], arg))
    return out


# --- roff ---------------------------------------------------------------------

ROFF_CHARS = {
    "aq": "'", "dq": '"', "lq": '"', "rq": '"', "oq": "'", "cq": "'",
    "em": "-", "en": "-", "bu": "*", "ti": "~", "ha": "^", "rs": "\\",
    "lB": "[", "rB": "]", "lC": "{", "rC": "}", "ba": "|", "or": "|",
}


def roff_text(s):
    """Plain text of roff input text (escapes resolved, fonts dropped)."""
    s = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", s)
    s = re.sub(r"\\\[([^\]]+)\]", lambda m: ROFF_CHARS.get(m.group(1), "?"), s)
    s = re.sub(r"\\\((..)", lambda m: ROFF_CHARS.get(m.group(1), "?"), s)
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    s = s.replace("\\ ", " ").replace("\\~", " ").replace("\\|", "").replace("\\^", "")
    s = s.replace("\\c", "")
    return s


def macro_args(rest):
    """Arguments of a macro line, honouring double quotes."""
    args, cur, quoted, i = [], "", False, 0
    while i < len(rest):
        c = rest[i]
        if c == '"':
            if quoted and rest[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif c in " \t" and not quoted:
            if cur:
                args.append(cur)
            cur = ""
        elif c == "\\" and i + 1 < len(rest):
            cur += rest[i:i + 2]
            i += 1
        else:
            cur += c
        i += 1
    if cur:
        args.append(cur)
    return args


def line_text(line):
    """Text of one input line: a font macro's arguments joined without
    spaces (as .BR/.BI/... do), other macros' joined with spaces."""
    if not line.startswith((".", "'")):
        return roff_text(line)
    m = re.match(r"^[.'](\S+)\s*(.*)$", line)
    if not m:
        return ""
    name, rest = m.group(1), m.group(2)
    args = macro_args(rest)
    if name in ("BR", "BI", "IB", "IR", "RB", "RI"):
        return roff_text("".join(args))
    if name == "OP":
        return roff_text("[" + " ".join(args) + "]")
    return roff_text(" ".join(args))


def parse_man(path):
    """Returns {section name: [input lines]} of a man page, comments cut."""
    sections, current = {}, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if re.match(r"^[.']\s*\\\"", line):
                continue
            line = re.sub(r'\\".*$', "", line)
            m = re.match(r"^\.SH\s+(.*)$", line)
            if m:
                current = " ".join(macro_args(m.group(1))).upper()
                sections[current] = []
            elif current is not None:
                sections[current].append(line)
    return sections


def tagged_entries(lines):
    """[(tag text, body lines)] of the .TP entries of a section."""
    entries, i = [], 0
    while i < len(lines):
        if re.match(r"^\.TP\b", lines[i]) and i + 1 < len(lines):
            tag = line_text(lines[i + 1])
            body, j = [], i + 2
            while j < len(lines) and not re.match(r"^\.(TP|SH|SS)\b", lines[j]):
                body.append(lines[j])
                j += 1
            entries.append((tag, body))
            i = j
        else:
            i += 1
    return entries


# --- checks -------------------------------------------------------------------


def check_options(program, manpage, completion):
    problems = Problems()
    name = os.path.basename(program)
    run = subprocess.run([program, "--help"], capture_output=True, text=True, timeout=30)
    if run.returncode != 0:
        problems.add(f"{name} --help exited {run.returncode}: {run.stderr.strip()}")
        return problems.report(f"{name} options")
    usage_options, columns, help_sections = parse_help(run.stdout)
    help_options = usage_options | set(columns)

    man = parse_man(manpage)
    for required in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS",
                     "SEE ALSO"):
        if required not in man:
            problems.add(f"{manpage}: no {required} section")
    man_columns = {}
    for tag, _body in tagged_entries(man.get("OPTIONS", [])):
        pairs = split_option_column(tag)
        if not pairs:
            problems.add(f"{manpage}: OPTIONS entry '{tag}' names no option")
        for opt, arg in pairs:
            if opt in man_columns:
                problems.add(f"{manpage}: {opt} has two OPTIONS entries")
            man_columns[opt] = arg

    for opt in sorted(help_options - set(man_columns)):
        problems.add(f"{opt} is in '{name} --help' but not in {manpage}'s OPTIONS")
    for opt in sorted(set(man_columns) - help_options):
        problems.add(f"{opt} is in {manpage}'s OPTIONS but not in '{name} --help'")
    for opt in sorted(set(columns) & set(man_columns)):
        if columns[opt] != man_columns[opt]:
            problems.add(f"{opt} takes '{columns[opt]}' in --help but "
                         f"'{man_columns[opt]}' in {manpage}")

    synopsis = set()
    for line in man.get("SYNOPSIS", []):
        synopsis |= set(OPTION_RE.findall(line_text(line)))
    for opt in sorted(usage_options - synopsis):
        problems.add(f"{opt} is in the usage line but not in {manpage}'s SYNOPSIS")
    for opt in sorted(synopsis - help_options):
        problems.add(f"{opt} is in {manpage}'s SYNOPSIS but not in '{name} --help'")

    if "servers" in help_sections:
        text = " ".join(line_text(l) for l in man.get("SERVERS", []))
        words = set(text.split())
        for line in help_sections["servers"]:
            for word in line.split():
                if word not in words:
                    problems.add(f"server '{word}' of --help is not in {manpage}'s SERVERS")

    if "exit status" in help_sections:
        wanted = set()
        for line in help_sections["exit status"]:
            m = re.match(r"^\s+([0-9][0-9, ]*?)\s{2,}", line)
            if m:
                wanted |= set(re.findall(r"[0-9]+", m.group(1)))
        got = {tag.strip() for tag, _ in tagged_entries(man.get("EXIT STATUS", []))}
        for code in sorted(wanted - got, key=int):
            problems.add(f"exit status {code} of --help is not in {manpage}'s EXIT STATUS")
        for code in sorted(got - wanted, key=lambda c: (not c.isdigit(), c)):
            problems.add(f"exit status {code} of {manpage} is not in --help")

    if completion:
        offered = complete(completion, name, "-")
        if offered is None:
            problems.add(f"{completion} registers no completion for {name}")
        else:
            for opt in sorted(help_options - offered):
                problems.add(f"{opt} is in '{name} --help' but {completion} does not offer it")
            for opt in sorted(offered - help_options):
                problems.add(f"{completion} offers {opt}, which '{name} --help' lacks")

    return problems.report(f"{name} options ({len(help_options)} checked)")


def complete(completion, command, word):
    """Words the completion offers for "command word", or None."""
    bash = shutil.which("bash")
    if bash is None:
        raise RuntimeError("bash not found")
    script = r'''
source "$1" || exit 1
spec=$(complete -p -- "$2" 2>/dev/null) || exit 3
func=$(sed -n 's/.*-F \([^ ]*\) .*/\1/p' <<<"$spec")
[[ -n $func ]] || exit 3
COMP_WORDS=("$2" "$3"); COMP_CWORD=1
COMP_LINE="$2 $3"; COMP_POINT=${#COMP_LINE}
COMPREPLY=()
"$func" "$2" "$3" "$2"
printf '%s\n' "${COMPREPLY[@]}"
'''
    run = subprocess.run([bash, "--norc", "--noprofile", "-c", script, "bash",
                          completion, command, word],
                         capture_output=True, text=True, timeout=30)
    if run.returncode == 3:
        return None
    if run.returncode != 0:
        raise RuntimeError(f"bash failed on {completion}: {run.stderr.strip()}")
    return {w for w in run.stdout.split("\n") if w}


def lint(pages):
    problems = Problems()
    groff = shutil.which("groff")
    man = shutil.which("man")
    if groff is None and man is None:
        print("SKIP: neither groff nor man is installed (apt-get install groff-base man-db)")
        return SKIP
    env = dict(os.environ, MANWIDTH=str(MANWIDTH), LC_ALL="C.UTF-8", MAN_KEEP_FORMATTING="")
    for page in pages:
        if groff is not None:
            run = subprocess.run([groff, "-man", "-Tutf8", "-K", "utf8", "-ww", "-z", page],
                                 capture_output=True, text=True, env=env, timeout=60)
            for line in (run.stderr.splitlines() or
                         ([f"exit status {run.returncode}"] if run.returncode else [])):
                problems.add(f"groff: {page}: {line}")
        if man is not None:
            run = subprocess.run([man, "--warnings", "-l", "-E", "UTF-8", page],
                                 capture_output=True, text=True, env=env, timeout=60)
            for line in run.stderr.splitlines():
                problems.add(f"man: {page}: {line}")
            if run.returncode != 0 and not run.stderr:
                problems.add(f"man: {page}: exit status {run.returncode}")
            # man pipes through col -b only when not on a terminal; strip
            # any overstrike left so widths count characters.
            text = re.sub(r".\x08", "", run.stdout)
            for n, line in enumerate(text.splitlines(), 1):
                if len(line) > MANWIDTH:
                    problems.add(f"man: {page}: rendered line {n} is {len(line)} "
                                 f"columns wide: {line.strip()[:60]}")
            if "NAME" not in text:
                problems.add(f"man: {page}: rendered page has no NAME")
    return problems.report(f"lint of {len(pages)} page(s)")


def main(argv):
    if len(argv) >= 3 and argv[0] == "options" and len(argv) <= 4:
        return check_options(argv[1], argv[2], argv[3] if len(argv) == 4 else None)
    if len(argv) >= 2 and argv[0] == "lint":
        return lint(argv[1:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
