"""Keep the translations in step with the code: extract, update, check, compile.

python scripts/i18n.py update    # extract strings, merge into the .po files, compile .mo
python scripts/i18n.py check     # exit 1 if any zh_CN string is missing or untranslated
python scripts/i18n.py compile   # .po -> .mo only
python scripts/i18n.py fill F    # F: JSON {msgid: zh_CN text}; sets those, then compiles
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POT = ROOT / "translations" / "messages.pot"
# Babel parses zh_CN as zh_Hans_CN and looks for that folder name.
LOCALES = ("zh_Hans_CN", "en")


def run(*args: str) -> None:
    command = [sys.executable, "-m", "babel.messages.frontend", "-q", *args]
    subprocess.run(command, cwd=ROOT, check=True)  # noqa: S603 - our own fixed arguments


def extract() -> None:
    run(
        "extract",
        "-F",
        "babel.cfg",
        "-k",
        "_l",
        "--no-location",
        "--sort-output",
        "--omit-header",
        "-o",
        str(POT),
        ".",
    )


def update() -> None:
    extract()
    for locale in LOCALES:
        po = ROOT / "translations" / locale / "LC_MESSAGES" / "messages.po"
        if po.exists():
            run(
                "update",
                "-i",
                str(POT),
                "-d",
                "translations",
                "-l",
                locale,
                "--no-fuzzy-matching",
                "--ignore-obsolete",
            )
        else:
            run("init", "-i", str(POT), "-d", "translations", "-l", locale)
    compile_()
    POT.unlink()


def compile_() -> None:
    run("compile", "-d", "translations", "--use-fuzzy")


def missing() -> list[str]:
    """zh_CN msgids that the code uses but the catalogue does not translate."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po

    po_path = ROOT / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh)
    method_map = [("fieldapp/**.py", "python"), ("templates/**.html", "jinja2")]
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None}
    problems = []
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT), method_map, keywords=keywords
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        entry = catalog.get(msgid)
        text = entry.string if entry else None
        if isinstance(text, tuple):
            text = text[0]
        if not text:
            problems.append(msgid)
    return sorted(set(problems))


def fill(path: str) -> None:
    """Write translations from a JSON mapping into the zh_CN catalogue."""
    import json

    from babel.messages.pofile import read_po, write_po

    po_path = ROOT / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh)
    for msgid, text in json.loads(Path(path).read_text(encoding="utf-8")).items():
        if msgid in catalog:
            catalog[msgid].string = text
        else:
            catalog.add(msgid, text)
    with po_path.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, omit_header=False, width=0)
    compile_()


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "update"
    if command == "update":
        update()
    elif command == "compile":
        compile_()
    elif command == "fill":
        fill(sys.argv[2])
    elif command == "check":
        gaps = missing()
        for msgid in gaps:
            print("untranslated:", msgid)
        sys.exit(1 if gaps else 0)
    else:
        sys.exit(__doc__)
