"""Corefile syntax (CoreDNS's Caddyfile dialect): tokens, server blocks and directives.

This module knows syntax only; what a directive means lives in its plugin's `parse()`. Every
token remembers its file and line so any later error can be reported as `FILE:LINE: message`.

Supported: server blocks with one or more keys, nested blocks, quoted tokens with escapes, `#`
comments, `{$ENV}` / `{%ENV%}` substitution, snippets `(name) { ... }` with `import name`, and
`import GLOB` of other files (relative to the importing file).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

_ENV = re.compile(r"\{\$([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}|\{%([A-Za-z_][A-Za-z0-9_]*)%\}")
MAX_IMPORT_DEPTH = 10


class CorefileError(Exception):
    """A Corefile problem, reported as `file:line: message`."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


class CorefileErrors(CorefileError):
    """Several problems found in one pass: `str()` is one `file:line: message` per line.

    It is a CorefileError about the first problem, so a caller that handles one handles all.
    """

    def __init__(self, errors: Sequence[CorefileError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.line, first.message)
        self.args = ("\n".join(str(e) for e in errors),)
        self.errors = tuple(errors)

    def __str__(self) -> str:
        return str(self.args[0])

    @staticmethod
    def raise_if(errors: Sequence[CorefileError]) -> None:
        """Raise the one error as it is, several as CorefileErrors, none: nothing."""
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise CorefileErrors(errors)


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    file: str
    line: int
    quoted: bool = False
    comma: bool = False  # a comma followed it (server keys may continue on the next line)

    def error(self, message: str) -> CorefileError:
        return CorefileError(self.file, self.line, message)


@dataclass(frozen=True, slots=True)
class Directive:
    """One line of a block: a name, its arguments, and an optional nested block."""

    name: str
    args: tuple[Token, ...]
    block: tuple[Directive, ...] | None
    file: str
    line: int

    def error(self, message: str) -> CorefileError:
        return CorefileError(self.file, self.line, message)

    @property
    def values(self) -> list[str]:
        return [t.text for t in self.args]


@dataclass(frozen=True, slots=True)
class ServerBlock:
    keys: tuple[Token, ...]
    directives: tuple[Directive, ...]
    file: str
    line: int


@dataclass(slots=True)
class _Lexer:
    text: str
    file: str
    tokens: list[Token] = field(default_factory=list)

    def run(self) -> list[Token]:
        text, i, line, n = self.text, 0, 1, len(self.text)
        while i < n:
            ch = text[i]
            if ch == "\n":
                line += 1
                i += 1
            elif ch in " \t\r":
                i += 1
            elif ch == "#":
                while i < n and text[i] != "\n":
                    i += 1
            elif ch == '"':
                start_line = line
                buf: list[str] = []
                i += 1
                while True:
                    if i >= n:
                        raise CorefileError(self.file, start_line, "unterminated quoted string")
                    c = text[i]
                    if c == "\\" and i + 1 < n and text[i + 1] in '"\\':
                        buf.append(text[i + 1])
                        i += 2
                        continue
                    if c == '"':
                        i += 1
                        break
                    if c == "\n":
                        line += 1
                    buf.append(c)
                    i += 1
                self.tokens.append(Token(_expand_env("".join(buf)), self.file, start_line, True))
            else:
                start = i
                while i < n and text[i] not in " \t\r\n":
                    i += 1
                word = text[start:i]
                self.tokens.append(Token(_expand_env(word), self.file, line))
        return self.tokens


def _expand_env(word: str) -> str:
    def sub(m: re.Match[str]) -> str:
        var = m.group(1) or m.group(3)
        default = m.group(2)
        value = os.environ.get(var)
        if value is None:
            return default if default is not None else ""
        return value

    return _ENV.sub(sub, word) if "{" in word else word


def tokenize(text: str, file: str) -> list[Token]:
    return _Lexer(text, file).run()


class _Parser:
    def __init__(
        self, tokens: list[Token], file: str, snippets: dict[str, list[Token]], depth: int
    ):
        self.toks = tokens
        self.pos = 0
        self.file = file
        self.snippets = snippets
        self.depth = depth

    def peek(self) -> Token | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def expand_imports(self) -> None:
        """Replace `import X` with the snippet's or file's tokens (before structure parsing)."""
        out: list[Token] = []
        i = 0
        toks = self.toks
        while i < len(toks):
            tok = toks[i]
            if tok.text == "import" and not tok.quoted and _line_start(toks, i):
                if i + 1 >= len(toks) or toks[i + 1].line != tok.line:
                    raise tok.error("import needs a snippet name or a file pattern")
                target = toks[i + 1]
                out.extend(self._import(target))
                i += 2
                continue
            out.append(tok)
            i += 1
        self.toks = out

    def _import(self, target: Token) -> list[Token]:
        if self.depth >= MAX_IMPORT_DEPTH:
            raise target.error("imports nested too deeply (an import cycle?)")
        if target.text in self.snippets:
            sub = _Parser(
                list(self.snippets[target.text]), self.file, self.snippets, self.depth + 1
            )
            sub.expand_imports()
            return sub.toks
        base = Path(target.file).parent
        pattern = target.text if os.path.isabs(target.text) else str(base / target.text)
        matches = sorted(glob.glob(pattern))
        if not matches:
            if glob.has_magic(target.text):
                return []  # CoreDNS: a glob that matches nothing imports nothing
            raise target.error(f"import: no snippet or file named {target.text!r}")
        out: list[Token] = []
        for path in matches:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise target.error(f"import: cannot read {path}: {exc.strerror}") from exc
            except UnicodeDecodeError as exc:
                raise target.error(f"import: cannot read {path}: not UTF-8 ({exc.reason})") from exc
            sub = _Parser(tokenize(text, path), path, self.snippets, self.depth + 1)
            sub.expand_imports()
            out.extend(sub.toks)
        return out

    def collect_snippets(self) -> None:
        """Take `(name) { ... }` definitions out of the top level.

        Only an unquoted `(name)` that starts a line outside every block defines a snippet: the
        same text as an argument (`x "(0)"`) or inside a server block is an ordinary token.
        """
        out: list[Token] = []
        depth = 0
        prev: Token | None = None
        while self.pos < len(self.toks):
            tok = self.take()
            starts_line = prev is None or prev.line != tok.line or prev.text in ("{", "}")
            if (
                depth == 0
                and starts_line
                and not tok.quoted
                and tok.text.startswith("(")
                and tok.text.endswith(")")
                and len(tok.text) > 2
            ):
                nxt = self.peek()
                if nxt is None or nxt.text != "{":
                    raise tok.error(f"snippet {tok.text} must be followed by '{{'")
                self.take()
                body = self._balanced(tok)
                self.snippets[tok.text[1:-1]] = body
                prev = None
                continue
            if not tok.quoted:
                if tok.text == "{":
                    depth += 1
                elif tok.text == "}":
                    depth = max(0, depth - 1)
            out.append(tok)
            prev = tok
        self.toks = out
        self.pos = 0

    def _balanced(self, opener: Token) -> list[Token]:
        depth = 1
        body: list[Token] = []
        while True:
            if self.pos >= len(self.toks):
                raise opener.error("unclosed '{': missing '}'")
            tok = self.take()
            if tok.text == "{" and not tok.quoted:
                depth += 1
            elif tok.text == "}" and not tok.quoted:
                depth -= 1
                if depth == 0:
                    return body
            body.append(tok)

    def server_blocks(self) -> list[ServerBlock]:
        blocks: list[ServerBlock] = []
        while self.peek() is not None:
            first = self.peek()
            assert first is not None
            keys: list[Token] = []
            while True:
                tok = self.peek()
                if tok is None:
                    break
                if tok.text == "{" and not tok.quoted:
                    break
                if tok.text == "}" and not tok.quoted:
                    raise tok.error("unexpected '}' (no block is open)")
                if keys and tok.line != keys[-1].line and not keys[-1].comma:
                    break
                keys.extend(_split_keys(self.take()))
            if not keys:
                # Also when the keys were only commas or empty environment substitutions.
                where = self.peek() or first
                raise where.error("server block has no address (expected e.g. '.:53 {')")
            tok = self.peek()
            if tok is not None and tok.text == "{" and not tok.quoted:
                self.take()
                directives = self._directives(closer=True, opener=tok)
            elif not blocks and self._only_block_without_braces():
                directives = self._directives(closer=False, opener=keys[0])
            else:
                where = tok or keys[-1]
                raise where.error(
                    f"expected '{{' after server block keys {' '.join(k.text for k in keys)}"
                )
            blocks.append(ServerBlock(tuple(keys), tuple(directives), first.file, first.line))
        return blocks

    def _only_block_without_braces(self) -> bool:
        # Caddyfile rule: braces may be omitted when the file holds exactly one server block.
        return self.pos < len(self.toks)

    def _directives(self, closer: bool, opener: Token) -> list[Directive]:
        out: list[Directive] = []
        while True:
            tok = self.peek()
            if tok is None:
                if closer:
                    raise opener.error("unclosed '{': missing '}'")
                return out
            if tok.text == "}" and not tok.quoted:
                self.take()
                if not closer:
                    raise tok.error("unexpected '}'")
                return out
            if tok.text == "{" and not tok.quoted:
                raise tok.error("unexpected '{' (a block must follow a directive on the same line)")
            name = self.take()
            args: list[Token] = []
            block: tuple[Directive, ...] | None = None
            while True:
                nxt = self.peek()
                if nxt is None or nxt.line != name.line:
                    break
                if nxt.text == "}" and not nxt.quoted:
                    break
                if nxt.text == "{" and not nxt.quoted:
                    self.take()
                    block = tuple(self._directives(closer=True, opener=nxt))
                    break
                args.append(self.take())
            out.append(Directive(name.text, tuple(args), block, name.file, name.line))


def _line_start(toks: list[Token], i: int) -> bool:
    return i == 0 or toks[i - 1].line != toks[i].line or toks[i - 1].text in ("{", "}")


def _split_keys(tok: Token) -> list[Token]:
    # Server keys may be separated by commas; a trailing comma continues on the next line.
    parts = [p for p in tok.text.split(",") if p]
    out = [replace(tok, text=p) for p in parts]
    if out and tok.text.endswith(","):
        out[-1] = replace(out[-1], comma=True)
    return out


def parse(text: str, file: str = "Corefile") -> list[ServerBlock]:
    """Parse Corefile text into server blocks. Raises CorefileError with file:line."""
    parser = _Parser(tokenize(text, file), file, {}, 0)
    parser.collect_snippets()
    parser.expand_imports()
    blocks = parser.server_blocks()
    if not blocks:
        raise CorefileError(file, 1, "no server blocks (expected e.g. '.:53 { ... }')")
    return blocks


def load(path: str | os.PathLike[str]) -> list[ServerBlock]:
    p = Path(path)
    return parse(read(p), str(p))


def read(p: Path) -> str:
    """The text of a Corefile; a CorefileError when it cannot be read or is not UTF-8."""
    try:
        return p.read_text(encoding="utf-8")
    except OSError as exc:
        raise CorefileError(str(p), 0, f"cannot read Corefile: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CorefileError(str(p), 0, f"cannot read Corefile: not UTF-8 ({exc.reason})") from exc
