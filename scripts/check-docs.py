#!/usr/bin/env python3
"""Checks the manual after `mdbook build docs` (scripts/docs.sh runs it).

- every page SUMMARY.md names exists in docs/src, and every page of docs/src is named there
  (a page left out of SUMMARY.md is never built, so nobody finds it);
- every link of every built page resolves inside the book: the page it names exists (a link to
  `other.md` becomes `other.html`), and so does the heading it names (`other.md#heading`), read
  from the ids the built page really has, so mdbook's own rules for heading ids decide;
- no `{{#include ...}}` was left unexpanded.

- every relative link of each MARKDOWN file given (README.md) names a file that exists, and a
  link to a heading of a page of the book names a heading that page has.

Links with a scheme (https:, mailto:) are not followed: the check runs offline.
Usage: check-docs.py BOOK_DIR [MARKDOWN...] (BOOK_DIR holds book.toml; the book is built into
BOOK_DIR/book).
"""

import html.parser
import pathlib
import re
import sys
import urllib.parse


class Page(html.parser.HTMLParser):
    """The ids and the link targets of one built page."""

    def __init__(self):
        super().__init__()
        self.ids = set()
        self.links = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])


def summary_pages(summary):
    """The .md pages SUMMARY.md links, in order (a draft chapter `[x]()` has none)."""
    pages = []
    for target in re.findall(r"\]\(([^)]*)\)", summary.read_text(encoding="utf-8")):
        if target:
            pages.append(target.split("#", 1)[0])
    return pages


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    root = pathlib.Path(sys.argv[1])
    src = root / "src"
    book = root / "book"
    errors = []

    listed = summary_pages(src / "SUMMARY.md")
    for page in listed:
        if not (src / page).is_file():
            errors.append(f"{src / 'SUMMARY.md'}: names `{page}`, which does not exist in {src}")
    present = {p.relative_to(src).as_posix() for p in src.rglob("*.md")} - {"SUMMARY.md"}
    for page in sorted(present - set(listed)):
        errors.append(f"{src / page}: not listed in {src / 'SUMMARY.md'}, so it is never built")

    # Every built page of the book, parsed once; index.html is the first page under another name.
    built = {}
    for page in [p[: -len(".md")] + ".html" for p in listed] + ["index.html"]:
        path = (book / page).resolve()
        if not path.is_file():
            errors.append(f"{book / page}: not built (is `mdbook build` run first?)")
            continue
        parser = Page()
        text = path.read_text(encoding="utf-8")
        parser.feed(text)
        built[path] = (page, parser, text)

    links = 0
    for path, (page, parser, text) in built.items():
        if "{{#" in text:
            errors.append(f"{book / page}: an mdbook directive was left unexpanded ({{{{#...}}}})")
        for href in parser.links:
            parts = urllib.parse.urlsplit(href)
            if parts.scheme or parts.netloc:
                continue
            links += 1
            target = path if not parts.path else (path.parent / urllib.parse.unquote(parts.path)).resolve()
            if book.resolve() not in target.parents:
                errors.append(f"{book / page}: link `{href}` leaves the book")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                errors.append(f"{book / page}: link `{href}` names a page that does not exist")
                continue
            if not parts.fragment:
                continue
            if target not in built:
                other = Page()
                other.feed(target.read_text(encoding="utf-8", errors="replace"))
                built[target] = (target.relative_to(book.resolve()).as_posix(), other, "")
            if urllib.parse.unquote(parts.fragment) not in built[target][1].ids:
                errors.append(
                    f"{book / page}: link `{href}` names a heading `#{parts.fragment}` that "
                    f"{built[target][0]} does not have"
                )

    # Markdown outside the book (README.md) that links into it.
    for markdown in map(pathlib.Path, sys.argv[2:]):
        text = markdown.read_text(encoding="utf-8")
        text = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks hold no links
        for href in re.findall(r"\]\(([^)\s]+)\)", text):
            parts = urllib.parse.urlsplit(href)
            if parts.scheme or parts.netloc or not parts.path:
                continue
            links += 1
            target = (markdown.parent / parts.path).resolve()
            if not target.exists():
                errors.append(f"{markdown}: link `{href}` names a file that does not exist")
                continue
            if parts.fragment and src.resolve() in target.parents and target.suffix == ".md":
                page = (book / target.relative_to(src.resolve())).with_suffix(".html").resolve()
                if page in built and parts.fragment not in built[page][1].ids:
                    errors.append(f"{markdown}: link `{href}` names a heading `#{parts.fragment}` that {target.name} does not have")

    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        print(f"help: fix the pages in {src} (or SUMMARY.md), then run scripts/docs.sh again", file=sys.stderr)
        sys.exit(1)
    print(f"docs: {len(listed)} pages, {links} links checked, all resolve", file=sys.stderr)


if __name__ == "__main__":
    main()
