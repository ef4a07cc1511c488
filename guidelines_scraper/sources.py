"""Declarative specs of the clinical-guideline sources.

Each source is one :class:`GuidelineSource`: where to start, how to discover article URLs, which
hosts may be visited, how to find the article in a page and which per-source lines to trim. The
16 built-in sources live in ``sources.toml`` next to this module (facts and caveats from
GUIDELINE_SOURCES.md); a user TOML file with the same layout overrides or extends them::

    [sources.who]                  # partial override of a built-in: only these fields change
    seeds = ["https://www.who.int/publications/who-guidelines"]
    min_words = 200

    [sources.mysite]               # a new source: name, base_url, seeds and discovery required
    name = "My guideline site"
    base_url = "https://guidelines.example.org"
    seeds = ["/index.html"]        # relative seeds are resolved against base_url
    discovery = "static"

Selectors (``content_selector``, ``exclude_selector``, ``title_selector``, ``subtitle_selector``,
``link_selector``, ``next_selector``) are CSS as cssselect understands it (compiled to XPath and run on
lxml trees). ``link_selector`` picks the article links of a listing page (the anchors it matches, or
those inside the elements it matches; ``link_pattern``, when set too, must also match); on a listing
page where it matches nothing the crawler falls back to ``link_pattern`` over all the page's links.
``next_selector`` picks a listing page's "next page" links, followed whatever ``listing_pattern`` says.

``paper_articles`` and ``paper_words``: the article count and word total of the source in MEDITRON's
corpus (the dataset card's table, words as rounded there), for comparing a crawl's yield with the paper.

Patterns: ``link_pattern`` and ``listing_pattern`` are searched (``re.search``) in the absolute,
normalised canonical URL (:func:`guidelines_scraper.fetch.normalize_url`: query arguments sorted,
``:`` in a query as ``%3A``). ``start_markers``/``stop_markers``/``remove_markers`` are matched,
case-insensitively and against the *whole* line (``re.fullmatch``), on the line's text with any
``#`` header marks, list dash and trailing colon removed (see :mod:`guidelines_scraper.clean`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import tomllib

from gap_replay.guidelines_scraper.fetch import host_allowed, host_of, normalize_url

BUILTIN_SOURCES_PATH = Path(__file__).with_name("sources.toml")

DISCOVERY_KINDS = ("listing", "sitemap", "static")
FORMATS = ("html", "pdf")
AUDIENCES = ("clinician", "patient", "both")
_TAG_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class SourceConfigError(ValueError):
    """A source spec (built-in or user TOML) is invalid; the message names the source and field."""


@dataclass(frozen=True)
class GuidelineSource:
    """One guideline source. Frozen and hashable, so it can be shipped to Spark workers."""

    tag: str
    name: str
    base_url: str
    seeds: tuple[str, ...]
    discovery: str = "listing"
    link_pattern: str | None = None
    listing_pattern: str | None = None
    link_selector: str | None = None
    next_selector: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    content_selector: str | None = None
    exclude_selector: str | None = None
    title_selector: str | None = None
    subtitle_selector: str | None = None
    title_remove: str | None = None
    format: str = "html"
    start_markers: tuple[str, ...] = ()
    stop_markers: tuple[str, ...] = ()
    remove_markers: tuple[str, ...] = ()
    min_words: int = 100
    audience: str = "clinician"
    country: str = ""
    open: bool = False
    requires_js: bool = False
    paper_articles: int | None = None
    paper_words: int | None = None
    note: str = ""

    # -- helpers used by the crawler and the extractor -------------------------------------

    def is_article(self, url: str) -> bool:
        """True when `url` (absolute, normalised) matches link_pattern (every URL if unset)."""
        return self.link_pattern is None or _compile(self.link_pattern, 0).search(url) is not None

    def is_listing(self, url: str) -> bool:
        """True when `url` matches listing_pattern (no URL if unset)."""
        return self.listing_pattern is not None and _compile(self.listing_pattern, 0).search(url) is not None

    def host_allowed(self, url_or_host: str) -> bool:
        """True when the host of `url_or_host` is one of allowed_hosts (``.example.org``/``*.example.org``
        entries also admit subdomains)."""
        return host_allowed(url_or_host, self.allowed_hosts)

    def compiled_markers(self, kind: str) -> tuple[re.Pattern[str], ...]:
        """The start/stop/remove markers as case-insensitive compiled patterns."""
        patterns = {"start": self.start_markers, "stop": self.stop_markers, "remove": self.remove_markers}[kind]
        return tuple(_compile(p, re.IGNORECASE) for p in patterns)


@lru_cache(maxsize=1024)
def _compile(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


@lru_cache(maxsize=256)
def css_selector(selector: str):
    """`selector` compiled once to an XPath callable over lxml HTML trees (cssselect's HTML rules:
    case-insensitive element names). Raises for a selector cssselect cannot translate."""
    from lxml.cssselect import CSSSelector

    return CSSSelector(selector, translator="html")


# -- loading and validation -------------------------------------------------------------------

_FIELD_NAMES = tuple(f.name for f in fields(GuidelineSource))
_TUPLE_FIELDS = {"seeds", "allowed_hosts", "start_markers", "stop_markers", "remove_markers"}
_OPTIONAL_STR = {"link_pattern", "listing_pattern", "link_selector", "next_selector", "content_selector",
                 "exclude_selector", "title_selector", "subtitle_selector", "title_remove"}
_STR_FIELDS = {"name", "base_url", "discovery", "format", "audience", "country", "note"}
_BOOL_FIELDS = {"open", "requires_js"}
_REQUIRED_NEW = ("name", "base_url", "seeds", "discovery")
_REGEX_FIELDS = ("link_pattern", "listing_pattern", "title_remove")
_MARKER_FIELDS = ("start_markers", "stop_markers", "remove_markers")
_CSS_FIELDS = ("content_selector", "exclude_selector", "title_selector", "subtitle_selector", "link_selector",
               "next_selector")
_COUNT_FIELDS = {"min_words", "paper_articles", "paper_words"}


def _err(tag: str, fieldname: str | None, message: str, origin: str | None) -> SourceConfigError:
    where = f" (in {origin})" if origin else ""
    what = f"source {tag!r}" + (f", field {fieldname!r}" if fieldname else "")
    return SourceConfigError(f"{what}: {message}{where}")


def _check_types(tag: str, table: Mapping[str, Any], origin: str | None) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise _err(tag, None, "must be a table ([sources.<tag>])", origin)
    out: dict[str, Any] = {}
    for key, value in table.items():
        if key == "tag":
            if value != tag:
                raise _err(tag, "tag", f"does not match the table name ({value!r})", origin)
            continue
        if key not in _FIELD_NAMES:
            known = ", ".join(n for n in _FIELD_NAMES if n != "tag")
            raise _err(tag, key, f"unknown field (known fields: {known})", origin)
        if key in _TUPLE_FIELDS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise _err(tag, key, "must be a list of strings", origin)
            value = tuple(value)
        elif key in _OPTIONAL_STR:
            if value is None or value == "":
                value = None
            elif not isinstance(value, str):
                raise _err(tag, key, "must be a string", origin)
        elif key in _STR_FIELDS:
            if not isinstance(value, str):
                raise _err(tag, key, "must be a string", origin)
        elif key in _BOOL_FIELDS:
            if not isinstance(value, bool):
                raise _err(tag, key, "must be true or false", origin)
        elif key in _COUNT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _err(tag, key, "must be a non-negative integer", origin)
        out[key] = value
    return out


def _validate(source: GuidelineSource, origin: str | None) -> GuidelineSource:
    tag = source.tag
    if not _TAG_RE.match(tag):
        raise _err(tag, None, "tag must be lower-case letters, digits and underscores, starting with a letter",
                   origin)
    if not source.name.strip():
        raise _err(tag, "name", "must not be empty", origin)
    base = source.base_url.strip()
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _err(tag, "base_url", f"must be an absolute http(s) URL, got {base!r}", origin)
    base = normalize_url(base)
    base = base.rstrip("/") if urlsplit(base).path in ("", "/") and not urlsplit(base).query else base
    if source.discovery not in DISCOVERY_KINDS:
        raise _err(tag, "discovery", f"must be one of {', '.join(DISCOVERY_KINDS)}, got {source.discovery!r}", origin)
    if source.format not in FORMATS:
        raise _err(tag, "format", f"must be one of {', '.join(FORMATS)}, got {source.format!r}", origin)
    if source.audience not in AUDIENCES:
        raise _err(tag, "audience", f"must be one of {', '.join(AUDIENCES)}, got {source.audience!r}", origin)
    for name in _REGEX_FIELDS:
        pattern = getattr(source, name)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _err(tag, name, f"is not a valid regular expression ({exc}): {pattern!r}", origin) from None
    for name in _MARKER_FIELDS:
        for pattern in getattr(source, name):
            try:
                re.compile(pattern, re.IGNORECASE)
            except re.error as exc:
                raise _err(tag, name, f"is not a valid regular expression ({exc}): {pattern!r}", origin) from None
    for name in _CSS_FIELDS:
        selector = getattr(source, name)
        if selector is not None:
            try:
                css_selector(selector)
            except Exception as exc:  # cssselect raises SelectorSyntaxError / ExpressionError
                raise _err(tag, name, f"is not a valid CSS selector ({exc}): {selector!r}", origin) from None
    allowed = tuple(h.strip().lower() for h in source.allowed_hosts if h.strip()) or (parts.hostname.lower(),)
    if not source.seeds and source.discovery != "sitemap":
        raise _err(tag, "seeds", "must list at least one URL (a sitemap source may list none: the sitemaps its "
                   "robots.txt names are read)", origin)
    seeds = []
    for seed in source.seeds:
        absolute = urljoin(base + ("/" if not base.endswith("/") else ""), seed.strip()) if seed.strip() else ""
        sp = urlsplit(absolute)
        if sp.scheme not in ("http", "https") or not sp.hostname:
            raise _err(tag, "seeds", f"not an http(s) URL: {seed!r}", origin)
        if not host_allowed(absolute, allowed):
            raise _err(tag, "seeds", f"seed {absolute!r} is outside allowed_hosts {list(allowed)}", origin)
        seeds.append(normalize_url(absolute))
    if source.discovery == "listing" and source.link_pattern is None and source.link_selector is None:
        raise _err(tag, "link_pattern", "(or link_selector) is required when discovery = \"listing\"", origin)
    return replace(source, base_url=base, seeds=tuple(seeds), allowed_hosts=allowed)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise SourceConfigError(f"source config not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SourceConfigError(f"{path}: invalid TOML: {exc}") from None
    unknown = set(data) - {"sources"}
    if unknown:
        raise SourceConfigError(f"{path}: unknown top-level key(s) {sorted(unknown)}; sources go in [sources.<tag>]")
    tables = data.get("sources", {})
    if not isinstance(tables, dict):
        raise SourceConfigError(f"{path}: 'sources' must be a table of [sources.<tag>] tables")
    return tables


def _build(tag: str, values: Mapping[str, Any], origin: str | None) -> GuidelineSource:
    missing = [name for name in _REQUIRED_NEW if name not in values]
    if missing:
        raise _err(tag, missing[0], "is required for a new source (required: " + ", ".join(_REQUIRED_NEW) + ")",
                   origin)
    return _validate(GuidelineSource(tag=tag, **values), origin)


def parse_sources(tables: Mapping[str, Any], base: Mapping[str, GuidelineSource] | None = None,
                  origin: str | None = None) -> dict[str, GuidelineSource]:
    """Merge `[sources.<tag>]` tables over `base` (partial tables update existing sources)."""
    result = dict(base or {})
    for tag, table in tables.items():
        values = _check_types(tag, table, origin)
        if tag in result:
            current = {f.name: getattr(result[tag], f.name) for f in fields(GuidelineSource) if f.name != "tag"}
            if "base_url" in values and "allowed_hosts" not in values:
                # A moved source keeps no stale default host list.
                old_host = host_of(current["base_url"])
                if current["allowed_hosts"] == (old_host,):
                    current["allowed_hosts"] = ()
            current.update(values)
            result[tag] = _validate(GuidelineSource(tag=tag, **current), origin)
        else:
            result[tag] = _build(tag, values, origin)
    return result


def load_sources(config_path: str | Path | None = None) -> dict[str, GuidelineSource]:
    """The built-in sources (``sources.toml``), overridden/extended by the TOML file `config_path`.

    Returns ``{tag: GuidelineSource}`` in built-in order, new user sources appended. Raises
    :class:`SourceConfigError` with a message naming the source and field on any invalid entry.
    """
    builtins = parse_sources(_read_toml(BUILTIN_SOURCES_PATH), origin=str(BUILTIN_SOURCES_PATH))
    if config_path is None:
        return builtins
    path = Path(config_path)
    return parse_sources(_read_toml(path), base=builtins, origin=str(path))


def select_sources(sources: Mapping[str, GuidelineSource], tags: Iterable[str] | None) -> list[GuidelineSource]:
    """The sources named by `tags` (all of them, in order, when `tags` is None or empty)."""
    if not tags:
        return list(sources.values())
    wanted = [t.strip() for t in tags if t.strip()]
    unknown = [t for t in wanted if t not in sources]
    if unknown:
        raise SourceConfigError(
            f"unknown source tag(s): {', '.join(unknown)}; known tags: {', '.join(sorted(sources))}")
    seen: set[str] = set()
    return [sources[t] for t in wanted if not (t in seen or seen.add(t))]

