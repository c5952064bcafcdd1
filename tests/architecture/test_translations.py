"""Every word a person reads goes through Django's translation machinery: checked on the source.

Three readers, one per kind of file, each failing with the file, line and text it found:

- **Templates** (templates/**/*.html, *.txt): the template is lexed the way Django lexes it, every
  tag and variable replaced by a placeholder and the text inside {% blocktranslate %} dropped; what
  is left is parsed as HTML. Any word in a text node, or in an attribute a person reads (title,
  placeholder, alt, aria-label, a button's value, data-*-message...), is text nobody marked.
- **Python** (attendance/): the places a message reaches a person: django.contrib.messages, the
  ValidationError / PermissionDenied / Http404 family, DRF's exceptions and ours (FooError,
  SignInRefused...; not Python's own ValueError and the like), a Response's "detail"
  or "error", form and model field labels and help texts, and the labels of TextChoices. A plain
  string literal or f-string there is unmarked; gettext(...) / gettext_lazy(...) / ngettext(...)
  and pgettext(...) around it (or a variable, which was marked where it was written) pass.
- **JavaScript** (static/js/): a string literal that reads as words (capitalised words, a phrase
  ending in . ! ? or :, three words or more, or one capitalised word) must be the message of
  gettext(...), ngettext(...) or pgettext(...) (JavaScriptCatalog). Two lowercase words are not
  told from a class list or an event name: the page walk in Croatian finds those.

Not covered: the management commands, the bench and the evaluation (tools for the people running the
server, in English like Django's own commands), log lines, and the Swagger UI page (the API's
reference, a third-party UI that has no Croatian; its schema is the API's developer documentation).
The running app is checked too: tests/attendance/test_languages.py renders pages in Croatian.
"""

from __future__ import annotations

import ast
import html
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.template.base import Lexer, TokenType

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
# Not ours to translate: drf-spectacular's Swagger UI page (see the module docstring).
TEMPLATES_SKIPPED = {"drf_spectacular"}
JS_SKIPPED = {"api_docs.js"}
PYTHON_SKIPPED = {"migrations", "management", "bench"}

# Words that are the same in every language: the product's name and file formats.
NEUTRAL_WORDS = {"Rollcall", "CSV", "XLSX", "ICS", "JSON", "API", "PDF", "JPEG", "PNG", "URL", "LDAP", "OIDC", "SSO",
                 "CLIP", "dlib", "iCalendar", "Swagger"}
WORD = re.compile(r"[^\W\d_]{2,}")

READ_ATTRIBUTES = {"title", "placeholder", "alt", "aria-label", "aria-description", "aria-roledescription",
                   "aria-valuetext", "label", "summary"}
READ_DATA_ATTRIBUTE = re.compile(r"data-[\w-]*(message|label|text|confirm|title|hint|error|prompt)[\w-]*$")

PLACEHOLDER = "\u2063"  # stands for a {% tag %} or {{ variable }}: no letters, so never a word


def words(text: str) -> list[str]:
    return [w for w in WORD.findall(html.unescape(text)) if w not in NEUTRAL_WORDS]


# --- templates ---------------------------------------------------------------------------------


def _template_files() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in {".html", ".txt"}
                  and not TEMPLATES_SKIPPED & set(p.relative_to(TEMPLATES).parts))


def _untranslated_source(source: str) -> str:
    """The template with every tag/variable a placeholder, translated blocks and comments dropped.

    Newlines are kept, so a line number in the result is the line in the template.
    """
    out: list[str] = []
    skipping: str | None = None  # the end tag we are waiting for
    for token in Lexer(source).tokenize():
        content = token.contents
        if token.token_type == TokenType.BLOCK:
            name = content.split(None, 1)[0] if content else ""
            if skipping:
                if name == skipping:
                    skipping = None
                out.append(PLACEHOLDER)
                continue
            if name in {"blocktranslate", "blocktrans"}:
                skipping = "end" + name
            elif name == "comment":
                skipping = "endcomment"
            out.append(PLACEHOLDER)
        elif token.token_type == TokenType.TEXT:
            out.append("\n" * content.count("\n") if skipping else content)
        elif token.token_type == TokenType.VAR and not skipping and (shown := _shown_filter_text(content)):
            out.append(shown)  # {{ x|default:"Session" }}: the literal is read when x is empty
        else:  # a variable or a {# comment #}
            out.append(PLACEHOLDER)
    return "".join(out)


# Filters whose literal argument is shown as it is (the argument of date, floatformat... is a format).
SHOWN_FILTER_ARGUMENT = re.compile(r"""\|\s*(?:default|default_if_none|yesno)\s*:\s*(["'])(.*?)\1""")
# A literal shown as it is: {{ "Session" }}, {{ "Session"|upper }}.
SHOWN_LITERAL = re.compile(r"""^\s*(["'])(.*?)\1""")


def _shown_filter_text(content: str) -> str:
    if content.startswith(("_(", " _(")):
        return ""
    texts = [m.group(2) for m in SHOWN_FILTER_ARGUMENT.finditer(content)]
    if (literal := SHOWN_LITERAL.match(content)) and not content.lstrip().startswith("_("):
        texts.append(literal.group(2))
    return " ".join(text.replace(",", " ") for text in texts if words(text))


class _TextFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._raw: str | None = None  # inside <script> or <style>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._raw = tag
        attributes = dict(attrs)
        for name, value in attrs:
            read = name in READ_ATTRIBUTES or READ_DATA_ATTRIBUTE.match(name)
            # An <input type=submit>'s value is its label; a <button>'s value is sent, never shown.
            if name == "value" and tag == "input" and attributes.get("type") in {"submit", "button", "reset"}:
                read = True
            if name == "content" and tag == "meta" and attributes.get("name") in {"description"}:
                read = True
            if read and value and words(value):
                self.found.append((self.getpos()[0], f'{name}="{value}"'))

    def handle_endtag(self, tag: str) -> None:
        if tag == self._raw:
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw is None and words(data):
            self.found.append((self.getpos()[0], data.strip(PLACEHOLDER + " \n\t")))


def untranslated_template_text(source: str, *, plain_text: bool = False) -> list[tuple[int, str]]:
    """(line, text) for every piece of text in a template that is not marked for translation."""
    text = _untranslated_source(source)
    if plain_text:  # an email's .txt: every line of it is read
        return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if words(line)]
    finder = _TextFinder()
    finder.feed(text)
    finder.close()
    return finder.found


@pytest.mark.parametrize("path", _template_files(), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_text_is_marked_for_translation(path: Path) -> None:
    found = untranslated_template_text(path.read_text(), plain_text=path.suffix == ".txt")
    assert not found, f"{path.relative_to(ROOT)}: text not marked for translation " + "; ".join(
        f"line {line}: {text[:80]!r}" for line, text in found)


# --- Python ------------------------------------------------------------------------------------

MESSAGE_FUNCTIONS = {"debug", "info", "success", "warning", "error", "add_message"}
EXCEPTIONS = {"ValidationError", "PermissionDenied", "Http404", "NotFound", "ParseError", "NotAuthenticated",
              "AuthenticationFailed", "MethodNotAllowed", "NotAcceptable", "UnsupportedMediaType", "Throttled",
              "APIException", "SuspiciousOperation", "BadRequest"}
# ...and ours (CampusError, EnrolmentError, SignInRefused, Conflict...): their messages are shown to people.
OUR_EXCEPTION = re.compile(r"[A-Z]\w*(Error|Refused|Rejected|Conflict|TooLarge|Unavailable)$")
# Refusals nobody reads but the log (English, like the log): the sign-in page shows a sentence of its own
# ("Your directory password is right, but this account cannot sign in..."), whatever the reason.
LOG_ONLY_EXCEPTIONS = {"SignInRefused", "SuspiciousOperation"}
# Errors for the people who run or write the app, not its users: English like Python's own.
DEVELOPER_EXCEPTIONS = {"ValueError", "TypeError", "RuntimeError", "KeyError", "LookupError", "OSError",
                        "AttributeError", "NotImplementedError", "AssertionError", "ImproperlyConfigured",
                        "ImportError", "FileNotFoundError", "PermissionError", "TimeoutError", "ConnectionError"}
LABEL_KEYWORDS = {"label", "help_text", "verbose_name", "verbose_name_plural", "empty_label", "error_messages"}
DETAIL_KEYS = {"detail", "error", "message", "reason"}
TRANSLATORS = {"gettext", "gettext_lazy", "ngettext", "ngettext_lazy", "pgettext", "pgettext_lazy", "npgettext",
               "npgettext_lazy", "_", "gettext_noop", "format_lazy"}


def _python_files() -> list[Path]:
    return sorted(p for p in (ROOT / "attendance").rglob("*.py") if not PYTHON_SKIPPED & set(p.parts))


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_words(node: ast.expr | None) -> bool:
    """A literal a person would read: a str (or f-string) constant with words in it."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return bool(words(node.value))
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.Constant) and words(str(v.value)) for v in node.values)
    if isinstance(node, ast.BinOp):  # "..." + x, "..." % x
        return _is_words(node.left) or _is_words(node.right)
    if isinstance(node, ast.Call) and _name(node.func) == "format":  # "...".format(...)
        return _is_words(node.func.value) if isinstance(node.func, ast.Attribute) else False
    if isinstance(node, ast.IfExp):
        return _is_words(node.body) or _is_words(node.orelse)
    if isinstance(node, ast.Dict):
        return any(_is_words(v) for v in node.values)
    return False


def _unmarked_in_python(tree: ast.AST) -> Iterator[tuple[int, str]]:
    choices_classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                       and any(_name(b) in {"TextChoices", "IntegerChoices", "Choices"} for b in node.bases)}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in choices_classes:
            for item in node.body:  # NAME = "value", "Label"
                if isinstance(item, ast.Assign) and isinstance(item.value, ast.Tuple) and len(item.value.elts) >= 2:
                    label = item.value.elts[-1]
                    if _is_words(label):
                        yield item.lineno, f"choice label {ast.unparse(label)}"
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in TRANSLATORS:
            continue
        qualifier = _name(node.func.value) if isinstance(node.func, ast.Attribute) else ""
        if name in MESSAGE_FUNCTIONS and qualifier == "messages" and len(node.args) >= 2 and _is_words(node.args[1]):
            yield node.lineno, f"messages.{name}({ast.unparse(node.args[1])})"
        shown = (name in EXCEPTIONS or (OUR_EXCEPTION.match(name) and name not in DEVELOPER_EXCEPTIONS)) \
            and name not in LOG_ONLY_EXCEPTIONS
        if shown and any(_is_words(arg) for arg in node.args):
            yield node.lineno, f"{name}({', '.join(ast.unparse(a) for a in node.args)[:100]})"
        if shown:
            for keyword in node.keywords:
                if keyword.arg in {"detail", "message"} and _is_words(keyword.value):
                    yield node.lineno, f"{name}({keyword.arg}={ast.unparse(keyword.value)})"
        for keyword in node.keywords:
            if keyword.arg in LABEL_KEYWORDS and _is_words(keyword.value):
                yield node.lineno, f"{keyword.arg}={ast.unparse(keyword.value)[:80]}"
        if name == "strftime" and node.args and isinstance(node.args[0], ast.Constant) \
                and re.search(r"%[aAbBp]", str(node.args[0].value)):
            yield node.lineno, f"strftime({node.args[0].value!r}): English day or month names (use formats.date_format)"
        if name in {"Response", "JsonResponse"}:
            data = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "data"), None)
            if isinstance(data, ast.Dict):
                for key, value in zip(data.keys, data.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value in DETAIL_KEYS and _is_words(value):
                        yield node.lineno, f"{name}({{{key.value!r}: {ast.unparse(value)[:80]}}})"


@pytest.mark.parametrize("path", _python_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_python_messages_are_marked_for_translation(path: Path) -> None:
    found = sorted(set(_unmarked_in_python(ast.parse(path.read_text()))))
    assert not found, f"{path.relative_to(ROOT)}: messages not marked for translation " + "; ".join(
        f"line {line}: {text}" for line, text in found)


# --- JavaScript --------------------------------------------------------------------------------

# One left-to-right scan, so a "//" inside a string ("https://...") is not a comment.
JS_TOKEN = re.compile(r"""(?P<comment>//[^\n]*|/\*.*?\*/)|(?P<q>['"`])(?P<s>(?:\\.|(?!(?P=q)).)*)(?P=q)""", re.S)
JS_TRANSLATED = re.compile(r"(?:\b(?:gettext|ngettext|pgettext|npgettext)\(\s*(?:(['\"`])(?:\\.|(?!\1).)*\1\s*,\s*)*)$")
# Read by machines, not people: HTTP headers and methods, MIME types.
JS_NEUTRAL = {"Content-Type", "X-CSRFToken", "Accept", "Idempotency-Key"}


def _reads_as_words(text: str) -> bool:
    """Prose, not a selector, class list, event name or header: what a person would read."""
    text = re.sub(r"\$\{[^}]*\}", " ", text).strip()
    found = words(text)
    if not found or text in JS_NEUTRAL:
        return False
    if len(found) == 1:  # one word: a capitalised label ("Retry", "Unknown")
        return bool(re.fullmatch(r"[A-Z][a-z]{2,}[.!?…]?", text))
    if re.search(r"[.#\[\]>=/]", text.rstrip(".!?…")) and not text[:1].isupper():
        return False  # ".roster tbody tr", "button[type=submit]", "image/jpeg"
    return text[:1].isupper() or text[-1:] in ".!?…:" or len(found) >= 3


def untranslated_js_strings(source: str) -> list[tuple[int, str]]:
    found = []
    for match in JS_TOKEN.finditer(source):
        if match.group("comment"):
            continue
        text = match.group("s")
        if not _reads_as_words(text):
            continue
        if JS_TRANSLATED.search(source[max(0, match.start() - 200):match.start()]):
            continue
        found.append((source.count("\n", 0, match.start()) + 1, text))
    return found


@pytest.mark.parametrize("path", sorted(p for p in (ROOT / "static" / "js").glob("*.js") if p.name not in JS_SKIPPED),
                         ids=lambda p: p.name)
def test_javascript_text_is_marked_for_translation(path: Path) -> None:
    found = untranslated_js_strings(path.read_text())
    assert not found, f"{path.relative_to(ROOT)}: text not passed through gettext() " + "; ".join(
        f"line {line}: {text[:80]!r}" for line, text in found)


# --- the readers themselves: each finds what it must, and passes what is marked ---------------


def test_template_reader_finds_unmarked_text_and_passes_marked_text() -> None:
    source = """{% load i18n %}<h1>{% translate "Courses" %}</h1>
<p>{{ count }} students</p>
<input type="submit" value="Save">
<img src="x.png" alt="{% translate 'A face' %}">
<a title="Open {{ name }}">{{ name }}</a>
{% blocktranslate %}Hello {{ name }}{% endblocktranslate %}
{% comment %}Never shown{% endcomment %}
<script>const x = "not read here";</script>
<p>CSV · Rollcall</p>
<td>{{ session.title|default:"Session" }}</td><td>{{ x|default:_("Session") }}</td>
<td>{{ x|date:"DATE_FORMAT" }}</td>"""
    found = untranslated_template_text(source)
    assert [text for _, text in found] == ["students", 'value="Save"', f'title="Open {PLACEHOLDER}"', "Session"]
    assert [line for line, _ in found] == [2, 3, 5, 10]
    assert untranslated_template_text("{% load i18n %}{% translate 'Dear' %} {{ name }},\nYour rate\n",
                                      plain_text=True) == [(2, "Your rate")]


def test_python_reader_finds_unmarked_messages_and_passes_marked_ones() -> None:
    source = '''
from django.utils.translation import gettext as _
class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    STUDENT = "student", _("Student")
def view(request):
    messages.success(request, "Saved the course.")
    messages.success(request, _("Saved the course."))
    messages.error(request, f"{name} could not be saved")
    raise ValidationError("Enter a date after the start.")
    raise ValidationError(_("Enter a date after the start."))
    raise ValidationError(problem)
    forms.CharField(label="Title", help_text=_("Shown on the page."))
    return Response({"detail": "No such course.", "code": "not_found"}, status=404)
    label = day.strftime("%a %d %b")
    stamp = day.strftime("%Y-%m-%d %H:%M")
    raise SignInRefused(f"the account {name} is deactivated")
'''
    found = [line for line, _ in _unmarked_in_python(ast.parse(source))]
    assert sorted(found) == [4, 7, 9, 10, 13, 14, 15]


def test_javascript_reader_finds_unmarked_text_and_passes_marked_text() -> None:
    source = """
// a comment with words in it
status.textContent = 'Camera is off';
status.textContent = gettext('Camera is off');
label = interpolate(gettext('%(name)s is present'), {name}, true);
n = ngettext('one face', '%s faces', count);
el.querySelector('.roster tbody tr');
headers['Content-Type'] = 'application/json';
box.title = `Unknown face ${i}`;
button.textContent = 'Retry';
link = 'https://example.org/'; note = 'Camera is off'; // a comment after "a string"
"""
    found = untranslated_js_strings(source)
    assert [line for line, _ in found] == [3, 9, 10, 11]


# --- the Croatian catalogue: complete, and current with the source ----------------------------


def _msgids(po_text: str) -> list[str]:
    """The msgids of a .po file's entries (the header's empty one left out), continuation lines joined."""
    ids = []
    for block in po_text.split("\n\n"):
        match = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        if match:
            text = "".join(ast.literal_eval(line) for line in re.findall(r'".*"', match.group(1)))
            if text:
                ids.append(text)
    return ids


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_marked_message_has_its_croatian(domain: str, tmp_path: Path, settings: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """makemessages run afresh on the source (into a copy of locale/): every message it finds has a
    Croatian translation, none fuzzy. A string marked but not translated, or a catalogue edited by
    hand out of step with the code, fails here with its msgid."""
    import shutil
    import subprocess

    from django.core.management import call_command

    # A copy of the source and of locale/: makemessages rewrites every catalogue it finds under the
    # directory it runs in, and the repository's own must stay as committed.
    for part in ("attendance", "config", "templates", "static/js", "locale"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    locale = tmp_path / "locale"
    settings.LOCALE_PATHS = [locale]
    monkeypatch.chdir(tmp_path)
    call_command("makemessages", locale=["hr"], domain=domain, verbosity=0, ignore_patterns=[
        "node_modules", "static/js/api_docs.js", "config/locale_rest_framework"])
    catalogue = locale / "hr" / "LC_MESSAGES" / f"{domain}.po"
    assert catalogue.exists(), f"makemessages found no {domain} messages"

    def attrib(*flags: str) -> list[str]:
        out = subprocess.run(["msgattrib", *flags, "--no-obsolete", str(catalogue)],
                             capture_output=True, text=True, check=True).stdout
        return _msgids(out)

    missing, unsure = attrib("--untranslated"), attrib("--only-fuzzy")
    assert not missing, f"{len(missing)} {domain} messages without Croatian: " + "; ".join(missing[:20])
    assert not unsure, f"{len(unsure)} fuzzy {domain} translations (check, then drop the flag): " + "; ".join(
        unsure[:20])
