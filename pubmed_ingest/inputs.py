"""What an NCBI input file is, and the JATS articles inside it.

Sniffing looks at content (gzip magic, tar header, first XML element), never at the suffix:
:func:`classify_input` for a path, :func:`classify_stream` for an open binary stream (left where
it was, so the caller can go on to parse it). :func:`iter_jats_inputs` (a path) and
:func:`iter_jats_archive` (a stream) yield the articles of a PMC OA bulk package
(``.tar.gz``) member by member, streamed without unpacking to disk; :func:`iter_jats_inputs`
also takes a single ``.nxml``/``.xml`` file (optionally gzip-compressed), which
:func:`read_jats_file` reads from an open stream.

Problems of content are reported in the stream, not raised, so that every input is accounted for: in
place of an article comes a :class:`~gap_replay.core.outcome.Drop` (source ``pubmed_papers``) with reason

- ``too_large``: a member (or single file) over ``max_member_bytes`` (default 64 MiB); id
  ``file:<archive>:<member>`` (``file:<name>`` for a single file); the archive goes on with its next member.
- ``parse_error``: the archive (or file) cannot be read any further (corrupt or truncated tar
  or gzip: a bad CRC, junk where a tar header should be, a stream that ends before tar's end-of-archive
  marker); id ``file:<archive>``; always the last item, after the members read before the damage.

A failure to read the bytes (``gap_replay.core.errors.is_transient``: an ``OSError`` such as a connection
reset half-way through, ``MemoryError``) raises instead, so that the task reading it is tried again.

An article is named ``<archive>:<member>`` (the name to give :func:`pubmed_ingest.jats.parse_jats`).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import tarfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO, Literal

from lxml import etree

from gap_replay.core.errors import is_transient
from gap_replay.core.outcome import Drop
from gap_replay.pubmed_ingest.xml_safety import local_name, pull_parser

SOURCE = "pubmed_papers"
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_MEMBER_BYTES = 64 * 1024 * 1024
JATS_SUFFIXES = (".nxml", ".xml")
_SNIFF_BYTES = 64 * 1024

InputKind = Literal["medline", "jats", "jats_archive"]

_ROOT_KINDS: dict[str, InputKind] = {
    "PubmedArticleSet": "medline",
    "MedlineCitationSet": "medline",
    "PubmedArticle": "medline",
    "MedlineCitation": "medline",
    "article": "jats",
    "pmc-articleset": "jats",
}


class UnrecognizedInput(ValueError):
    """The file is neither PubMed citation XML, a JATS article, nor a tar package."""


def classify_input(path: str | os.PathLike) -> InputKind:
    """``"medline"``, ``"jats"`` or ``"jats_archive"`` for the file at `path`, from its content.

    Gzip is recognised by its magic bytes and looked into; a tar header (``ustar``) means a PMC
    package; otherwise the first XML element decides (``PubmedArticleSet``/``MedlineCitationSet``:
    medline; ``article``: jats). Raises :class:`UnrecognizedInput` for anything else.
    """
    with open(path, "rb") as stream:
        head = stream.read(_SNIFF_BYTES)
    kind, root = _classify_head(head)
    if kind == "unknown":
        found = f"first element <{root}>" if root else "no XML element found"
        raise UnrecognizedInput(f"{os.fspath(path)}: not PubMed, JATS or a tar package ({found})")
    return kind


def classify_stream(stream: BinaryIO) -> InputKind | Literal["unknown"]:
    """Like :func:`classify_input` for an open binary stream, returning ``"unknown"`` instead of raising.

    The stream is left at its position: it must be seekable or offer ``peek`` (an
    ``io.BufferedReader``; then only the bytes its buffer holds are looked at, which is enough for
    the gzip header, a tar header and an XML prolog).
    """
    return _classify_head(_peek(stream, _SNIFF_BYTES))[0]


def iter_jats_inputs(
    path: str | os.PathLike, *, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
) -> Iterator[tuple[str, bytes] | Drop]:
    """Yield ``(name, xml_bytes)`` per JATS article in the file at `path`, or a Drop for what cannot be read.

    A tar package (any compression tarfile detects) yields its ``.nxml``/``.xml`` members named
    ``<path>:<member>``; any other file yields one item named by its path, gunzipped when it is
    gzip. See the module docstring for the Drops. A missing file raises ``OSError``.
    """
    name = os.fspath(path)
    with open(path, "rb") as stream:
        if classify_stream(stream) == "jats_archive":
            for member, data in iter_jats_archive(stream, name=name, max_member_bytes=max_member_bytes):
                yield data if isinstance(data, Drop) else (f"{name}:{member}", data)
        else:
            data = read_jats_file(stream, name=name, max_member_bytes=max_member_bytes)
            yield data if isinstance(data, Drop) else (name, data)


def iter_jats_archive(
    stream: BinaryIO, *, name: str, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
) -> Iterator[tuple[str, bytes | Drop]]:
    """Yield ``(member, xml_bytes)`` per ``.nxml``/``.xml`` member of the tar package read from `stream`.

    `name` names the package in Drop ids. Instead of the bytes comes a Drop (module docstring):
    ``(member, Drop too_large)`` for an oversized member, and last ``("", Drop parse_error)`` when
    the package turns out corrupt. Other members (images, PDFs, macOS ``._`` files) are skipped.
    """
    members = 0
    try:
        # Gzip is read through the gzip module, which checks each member's CRC and length and fails on a
        # stream cut short or followed by junk; tarfile's own gzip reader checks neither.
        unpacked = gzip.GzipFile(fileobj=stream, mode="rb") if _starts_with_gzip(stream) else None
        source, mode = (stream, "r|*") if unpacked is None else (unpacked, "r|")
        with tarfile.open(fileobj=source, mode=mode, tarinfo=_EndTellingTarInfo) as archive:
            for member in archive:
                if not member.isfile() or not _is_jats_name(member.name):
                    continue
                if member.size > max_member_bytes:
                    # The stream skips the member's bytes without holding them in memory.
                    yield member.name, _too_large(f"{name}:{member.name}", member.size, max_member_bytes)
                else:
                    handle = archive.extractfile(member)
                    yield member.name, handle.read() if handle is not None else b""
                members += 1
            _check_archive_end(archive)
        if unpacked is not None:
            while unpacked.read(1 << 20):  # to the gzip trailer, whose checks run as it is reached
                pass
    except Exception as error:  # noqa: BLE001 - tarfile, gzip and zlib all signal damage differently
        if is_transient(error):  # a read cut short is no end of the package: the caller's task fails
            raise
        yield "", Drop(
            id=f"file:{name}",
            reason="parse_error",
            detail=f"{type(error).__name__}: {error} (after {members} members)",
            source=SOURCE,
        )


class _EndTellingTarInfo(tarfile.TarInfo):
    """A TarInfo that leaves on its archive the header error that stopped the reading (``ended_by``).

    tarfile ends a stream's iteration the same quiet way at the end-of-archive marker (a zero block), at a
    header that is not one (junk after the first member) and at a stream cut short: only the first is an end.
    """

    @classmethod
    def fromtarfile(cls, archive):
        try:
            info = super().fromtarfile(archive)
        except tarfile.HeaderError as error:
            archive.ended_by = error
            raise
        archive.ended_by = None
        return info


def _check_archive_end(archive: tarfile.TarFile) -> None:
    """Raise ``tarfile.ReadError`` unless reading `archive` stopped at its end-of-archive marker."""
    ended_by = getattr(archive, "ended_by", None)
    if isinstance(ended_by, tarfile.EOFHeaderError):
        return
    if isinstance(ended_by, (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError)):
        raise tarfile.ReadError("the package ends without tar's end-of-archive marker (cut short)")
    raise tarfile.ReadError(f"a damaged tar header where the next member should start ({ended_by})")


def _starts_with_gzip(stream: BinaryIO) -> bool:
    try:
        return _peek(stream, 2) == GZIP_MAGIC
    except TypeError:  # neither seekable nor peekable: tarfile detects the compression itself
        return False


def read_jats_file(
    stream: BinaryIO, *, name: str, max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES
) -> bytes | Drop:
    """The content of the single JATS file read from `stream` (from where it is), gunzipped when it
    is gzip, holding at most ``max_member_bytes + 1`` bytes in memory; or a Drop with id ``file:<name>``:
    ``too_large`` beyond `max_member_bytes` (after gunzipping), ``parse_error`` for a corrupt or
    truncated gzip. A failed read raises (module docstring). The stream must be seekable or offer
    ``peek``, as for :func:`classify_stream`.
    """
    try:
        if _peek(stream, 2) == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        data = stream.read(max_member_bytes + 1)  # one byte more tells "too large" from "exactly the cap"
    except Exception as error:  # noqa: BLE001 - gzip and zlib signal damage differently
        if is_transient(error):
            raise
        return Drop(id=f"file:{name}", reason="parse_error", detail=f"{type(error).__name__}: {error}", source=SOURCE)
    if len(data) > max_member_bytes:
        return _too_large(name, None, max_member_bytes)
    return data


def _peek(stream: BinaryIO, size: int) -> bytes:
    """The next `size` bytes of `stream` (fewer at its end), leaving it where it was."""
    if stream.seekable():
        position = stream.tell()
        head = stream.read(size)
        stream.seek(position)
        return head
    if hasattr(stream, "peek"):
        return stream.peek(size)[:size]
    raise TypeError("reading a stream without consuming it needs a seekable stream or one with peek() "
                    "(io.BufferedReader)")


def _too_large(name: str, size: int | None, limit: int) -> Drop:
    size_text = f"{size} bytes" if size is not None else "more bytes"
    return Drop(id=f"file:{name}", reason="too_large", detail=f"{size_text} than the cap of {limit} bytes",
                source=SOURCE)


def _is_jats_name(member_name: str) -> bool:
    base = member_name.rsplit("/", 1)[-1]
    return base.lower().endswith(JATS_SUFFIXES) and not base.startswith("._")  # "._x": macOS metadata


# ---------------------------------------------------------------------------------------------
# Sniffing


def _classify_head(head: bytes) -> tuple[InputKind | Literal["unknown"], str | None]:
    """The kind of input that starts with `head`, and the first element name when one was found."""
    if head[:2] == GZIP_MAGIC:
        head = _gunzip_prefix(head)
    if head[257:262] == b"ustar":  # POSIX and GNU tar headers both carry it
        return "jats_archive", None
    root = _first_element_name(head)
    return _ROOT_KINDS.get(root or "", "unknown"), root


def _gunzip_prefix(compressed: bytes) -> bytes:
    """As much of the decompressed content as `compressed` (possibly cut short) yields."""
    try:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(compressed, _SNIFF_BYTES)
    except zlib.error:
        return b""


def _first_element_name(head: bytes) -> str | None:
    parser = pull_parser(events=("start",))
    with contextlib.suppress(etree.XMLSyntaxError):  # junk, or a prefix cut after the root element
        parser.feed(head)
    for _event, element in parser.read_events():
        return local_name(element.tag)
    return None
