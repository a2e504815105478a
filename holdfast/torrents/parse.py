"""Parse untrusted .torrent files (BEP 3, 12, 19, 27, 38, 47, 52).

The rules follow libtorrent's ``torrent_info`` so that we accept exactly the
files libtorrent accepts, with the same infohashes, files and sizes (the test
suite checks this against libtorrent's own corpus). Where libtorrent is lenient
about bencoding (unsorted keys in a v1 info dict, bytes after the end), the
default is to be lenient too; ``strict=True`` refuses anything that is not
canonical bencoding.
"""

from __future__ import annotations

import gc
import hashlib
from array import array
from collections.abc import Sequence
from typing import Any

from holdfast.torrents import bencode
from holdfast.torrents.errors import BencodeError, TorrentError
from holdfast.torrents.merkle import root_from_piece_layer
from holdfast.torrents.model import BLOCK_SIZE, FileList, Torrent
from holdfast.torrents.paths import fast_join, join_clean, sanitize_component

__all__ = ["MAX_PIECES", "MAX_PIECE_LENGTH", "parse_torrent"]

#: libtorrent's default limit on pieces per torrent (``load_torrent_limits::max_pieces``).
MAX_PIECES = 0x200000
#: libtorrent's largest accepted piece length (512 MiB less one 16 KiB block).
MAX_PIECE_LENGTH = (1 << 29) - (1 << 14)
# libtorrent refuses files whose 16 KiB block count reaches INT_MAX / 2.
_MAX_FILE_SIZE = BLOCK_SIZE * ((2**31 - 1) // 2) - 1
_INT_MAX = 2**31 - 1
_PAD_MARKER = "_____padding_file_"
_PAD_MARKER_BYTES = _PAD_MARKER.encode()
_ZERO_ROOT = bytes(32)
# No file system holds a path this deep; refusing it keeps cleaning cheap.
_MAX_PATH_COMPONENTS = 1000
# Duplicate paths libtorrent renames before it gives up on a torrent.
_MAX_DUPLICATE_PATHS = 100


def parse_torrent(
    data: bytes,
    *,
    strict: bool = False,
    max_size: int = bencode.DEFAULT_MAX_SIZE,
    max_pieces: int = MAX_PIECES,
) -> Torrent:
    """Parse and validate a .torrent file.

    Raises :class:`TorrentError` (and nothing else) when the data is not a
    torrent libtorrent would load, or, with ``strict=True``, when it is not
    canonical bencoding.
    """
    # The decoded torrent holds no reference cycles; pausing the cycle collector
    # spares it from scanning millions of fresh objects on large torrents.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _Parser(data, strict=strict, max_size=max_size, max_pieces=max_pieces).run()
    except TorrentError:
        raise
    except (RecursionError, MemoryError):
        raise TorrentError("torrent is too large or too deeply nested to read") from None
    except Exception as exc:  # untrusted input must only ever yield TorrentError
        raise TorrentError(f"invalid torrent ({type(exc).__name__}: {exc})") from exc
    finally:
        if gc_was_enabled:
            gc.enable()


# -- typed lookups with libtorrent's semantics (wrong type == absent) ---------


def _bytes(d: dict[bytes, Any], key: bytes) -> bytes | None:
    v = d.get(key)
    return v if isinstance(v, bytes) else None


def _int(d: dict[bytes, Any], key: bytes, default: int) -> int:
    v = d.get(key)
    return v if isinstance(v, int) else default


def _list(d: dict[bytes, Any], key: bytes) -> list[Any] | None:
    v = d.get(key)
    return v if isinstance(v, list) else None


def _dict(d: dict[bytes, Any], key: bytes) -> dict[bytes, Any] | None:
    v = d.get(key)
    return v if isinstance(v, dict) else None


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", "replace")


_ATTRS: dict[bytes, str] = {}


def _attr_text(raw: bytes) -> str:
    """BEP 47 attribute letters we know, in a fixed order (cached: few distinct values)."""
    text = _ATTRS.get(raw)
    if text is None:
        text = "".join(c for c in "lxhp" if ord(c) in raw)
        if len(_ATTRS) < 256:
            _ATTRS[raw] = text
    return text


def _attr(d: dict[bytes, Any]) -> str:
    raw = d.get(b"attr")
    return _attr_text(raw) if type(raw) is bytes and raw else ""


class _Entry:
    """One file as read from the torrent, pad files included."""

    __slots__ = ("attr", "mtime", "path", "raw", "root", "size", "symlink")

    def __init__(
        self,
        path: str,
        size: int,
        attr: str,
        root: bytes | None = None,
        symlink: str | None = None,
        raw: Sequence[bytes] = (),
    ) -> None:
        self.path = path
        self.size = size
        self.attr = attr
        self.root = root
        self.symlink = symlink
        self.raw = raw


class _Parser:
    def __init__(self, data: bytes, *, strict: bool, max_size: int, max_pieces: int) -> None:
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise TorrentError(f"expected the bytes of a .torrent file, got {type(data).__name__}")
        if len(data) > max_size:
            raise TorrentError(
                f"torrent file is {len(data)} bytes, more than the {max_size} allowed"
            )
        self.data = data
        self.strict = strict
        self.max_size = max_size
        self.max_pieces = max_pieces

    # -- bencoding -----------------------------------------------------------

    def _decode(self) -> tuple[dict[bytes, Any], bytes, list[bencode.Irregularity], bool]:
        """Root dict, exact info-dict bytes, irregularities inside the info dict, canonical?"""
        data = self.data
        try:
            root = bencode.decode(data, max_size=self.max_size)
        except BencodeError:
            if self.strict:
                raise
        else:
            if not isinstance(root, dict):
                raise TorrentError("a torrent file must be a dictionary")
            info = root.get(b"info")
            if not isinstance(info, dict):
                raise TorrentError("torrent has no info dictionary")
            return root, data[self._canonical_span(root, b"info")], [], True

        result = bencode.decode_tolerant(data, max_size=self.max_size)
        root = result.value
        if not isinstance(root, dict):
            raise TorrentError("a torrent file must be a dictionary")
        if not isinstance(root.get(b"info"), dict):
            raise TorrentError("torrent has no info dictionary")
        start, end = result.spans[b"info"]
        inside = [i for i in result.irregularities if start <= i.offset < end and i.refused_in_v2]
        return root, data[start:end], inside, False

    def _canonical_span(self, root: dict[bytes, Any], key: bytes) -> slice:
        # Canonical bencoding re-encodes byte for byte, so the span of one value
        # follows from the encoded lengths of the (small) entries around it,
        # without re-encoding the (large) value itself.
        before = 1
        after = 1
        for k, v in root.items():
            if k < key:
                before += bencode.encoded_length(k) + bencode.encoded_length(v)
            elif k > key:
                after += bencode.encoded_length(k) + bencode.encoded_length(v)
        before += bencode.encoded_length(key)
        return slice(before, len(self.data) - after)

    # -- the torrent ---------------------------------------------------------

    def run(self) -> Torrent:
        root, info_bytes, irregular, canonical = self._decode()
        info: dict[bytes, Any] = root[b"info"]
        if not info_bytes.startswith(b"d") or not info_bytes.endswith(b"e"):
            raise TorrentError("the info dictionary is not valid bencoding")

        # libtorrent reads the version into a C int; do the same so that the
        # same files are v2 for both of us
        version = (_int(info, b"meta version", -1) + 2**31) % 2**32 - 2**31
        if version > 0 and irregular:
            raise TorrentError(
                "the info dictionary of a v2 torrent must be canonical bencoding: "
                f"{irregular[0].message} at byte {irregular[0].offset}"
            )
        if version > 2:
            raise TorrentError(f"unknown torrent meta version {version}")
        is_v2 = version == 2

        # SHA-1 is what BEP 3 defines the v1 infohash as, not a security choice.
        sha1 = hashlib.sha1(info_bytes, usedforsecurity=False).hexdigest()
        sha256 = hashlib.sha256(info_bytes).hexdigest() if is_v2 else None

        piece_length = _int(info, b"piece length", -1)
        if piece_length <= 0 or piece_length > MAX_PIECE_LENGTH:
            raise TorrentError(f"invalid or missing piece length ({piece_length})")
        if is_v2 and (piece_length < BLOCK_SIZE or piece_length & (piece_length - 1)):
            raise TorrentError(
                f"a v2 piece length must be a power of two of at least 16 KiB, not {piece_length}"
            )

        raw_name = _bytes(info, b"name.utf-8")
        if raw_name is None:
            raw_name = _bytes(info, b"name")
        if raw_name is None:
            raise TorrentError("torrent has no name")
        # libtorrent: an empty name becomes "_", one that cleans to nothing the v1 hash
        name = "_" if raw_name == b"" else sanitize_component(raw_name)
        if name is None:
            name = sha1

        files_node = _list(info, b"files")
        file_tree = _dict(info, b"file tree")

        v2_entries: list[_Entry] | None = None
        v1_entries: list[_Entry] = []
        if is_v2:
            if file_tree is None:
                raise TorrentError("v2 torrent has no file tree")
            v2_entries = []
            self._walk_file_tree(file_tree, name, files_node is not None, 0, (), v2_entries)
        elif file_tree is not None:
            raise TorrentError("torrent has a v2 file tree but no meta version 2")

        has_v1 = True
        if files_node is None:
            if not is_v2 or b"length" in info:
                v1_entries.append(self._single_file(info))
            else:
                has_v1 = False
        else:
            v1_entries = self._v1_files(files_node, name, with_paths=not is_v2)

        entries = v2_entries if v2_entries is not None else v1_entries
        if not entries:
            raise TorrentError("torrent has no files")

        # The files we show: libtorrent's, i.e. the v2 tree when there is one.
        if v2_entries is not None:
            layout = self._v2_layout(v2_entries, piece_length)
            if has_v1 and v1_entries and not _same_layout(layout, v1_entries):
                raise TorrentError("the v1 file list and the v2 file tree describe different files")
            placed = _offsets(layout)
            total_with_pads = sum(e.size for e in layout)
        else:
            placed = _offsets(v1_entries)
            total_with_pads = sum(e.size for e in v1_entries)
        # What the v1 piece hashes cover: the v1 list as written (a hybrid's
        # tail padding is optional there).
        stream_size = sum(e.size for e in v1_entries) if has_v1 else total_with_pads

        if total_with_pads // piece_length >= _INT_MAX:
            raise TorrentError("torrent has too many pieces")
        num_pieces = -(-total_with_pads // piece_length)
        if num_pieces >= _INT_MAX // 20 or num_pieces > self.max_pieces:
            raise TorrentError(f"torrent has {num_pieces} pieces, more than {self.max_pieces}")

        pieces = _bytes(info, b"pieces")
        if pieces is None:
            if not is_v2:
                raise TorrentError("torrent has no piece hashes")
            # A hybrid without v1 hashes loads in libtorrent; its v1 peers
            # just cannot check data. Pieces are then checked by v2 hashes only.
        elif len(pieces) != num_pieces * 20:
            raise TorrentError(
                f"piece hashes are {len(pieces)} bytes, expected {num_pieces * 20} "
                f"for {num_pieces} pieces"
            )
        sha1_hex: str | None = sha1
        if not has_v1:
            pieces = None
            sha1_hex = None

        if total_with_pads == 0:
            raise TorrentError("torrent is empty (total size 0)")

        _resolve_duplicates(entries)
        real = [(e, off) for e, off in placed if "p" not in e.attr]

        piece_layers: dict[bytes, bytes] = {}
        if is_v2:
            piece_layers = self._check_piece_layers(root, entries, piece_length)

        paths = [e.path for e, _ in real]
        sizes = array("q", (e.size for e, _ in real))
        file_offsets = array("q", (off for _, off in real))
        roots = [e.root for e, _ in real] if is_v2 else None
        attrs = {i: e.attr for i, (e, _) in enumerate(real) if e.attr}
        symlinks = {i: e.symlink for i, (e, _) in enumerate(real) if e.symlink is not None}
        _check_symlinks(symlinks, paths)

        return Torrent(
            info_bytes=info_bytes,
            canonical=canonical,
            infohash_v1=sha1_hex,
            infohash_v2=sha256,
            name=name,
            piece_length=piece_length,
            files=FileList(paths, sizes, file_offsets if has_v1 else None, roots, attrs, symlinks),
            aligned_offsets=None if has_v1 else file_offsets,
            stream_size=stream_size,
            pieces=pieces,
            piece_layers=piece_layers,
            trackers=_trackers(root),
            webseeds=_webseeds(root),
            private=_int(info, b"private", 0) != 0,
            comment=_text(_bytes(root, b"comment.utf-8") or _bytes(root, b"comment")),
            created_by=_text(_bytes(root, b"created by")),
            creation_date=_creation_date(root),
            similar=_similar(info) + _similar(root),
            collections=_collections(info) + _collections(root),
        )

    # -- v1 files --------------------------------------------------------------

    def _file_size(self, d: dict[bytes, Any], attr: str) -> int:
        size = 0 if "l" in attr else _int(d, b"length", -1)
        if size < 0 or size > _MAX_FILE_SIZE:
            raise TorrentError(f"invalid file length ({size})")
        return size

    def _symlink(self, d: dict[bytes, Any]) -> str | None:
        target = d.get(b"symlink path")
        if not isinstance(target, list):
            return None
        if not all(isinstance(c, bytes) for c in target):
            raise TorrentError("a symlink path has a component that is not a string")
        return join_clean(target)

    def _single_file(self, info: dict[bytes, Any]) -> _Entry:
        attr = _attr(info)
        size = self._file_size(info, attr)
        raw = _bytes(info, b"name.utf-8")
        if raw is None:
            raw = _bytes(info, b"name")
        if not raw:
            raise TorrentError("torrent has no name")
        path = sanitize_component(raw)
        if path is None:
            raise TorrentError(f"torrent name {raw!r} is not a usable file name")
        return self._finish_v1(info, path, size, attr, [raw])

    def _v1_files(self, items: list[Any], name: str, *, with_paths: bool) -> list[_Entry]:
        """The v1 file list; plain entries take a fast path (100,000-file torrents).

        A hybrid's v1 list is only compared with its v2 tree, which gives the
        paths; ``with_paths=False`` then skips cleaning them.
        """
        out: list[_Entry] = []
        append = out.append
        prefix = name + "/"
        name_has_marker = _PAD_MARKER in prefix
        for item in items:
            if (
                type(item) is dict
                and b"path.utf-8" not in item
                and type(size := item.get(b"length")) is int
                and 0 <= size <= _MAX_FILE_SIZE
                and "l" not in (attr := _attr(item))
                and type(components := item.get(b"path")) is list
                and 0 < len(components) <= _MAX_PATH_COMPONENTS
                and not name_has_marker
            ):
                if with_paths:
                    joined = fast_join(components)
                    if joined is not None and _PAD_MARKER not in joined:
                        append(_Entry(prefix + joined, size, attr, raw=components))
                        continue
                else:
                    try:
                        raw = b"/".join(components)
                    except TypeError:
                        raw = _PAD_MARKER_BYTES  # not all strings: the full check reports it
                    if _PAD_MARKER_BYTES not in raw:
                        append(_Entry("", size, attr, raw=components))
                        continue
            append(self._v1_file(item, name))
        return out

    def _v1_file(self, item: Any, name: str) -> _Entry:
        if not isinstance(item, dict):
            raise TorrentError("an entry of the file list is not a dictionary")
        attr = _attr(item)
        size = self._file_size(item, attr)
        components = _list(item, b"path.utf-8")
        if components is None:
            components = _list(item, b"path")
        if components:
            if len(components) > _MAX_PATH_COMPONENTS:
                raise TorrentError(f"a file path has more than {_MAX_PATH_COMPONENTS} parts")
            if not all(isinstance(c, bytes) for c in components):
                raise TorrentError("a file path has a component that is not a string")
            path = f"{name}/{join_clean(components)}"
        elif "p" in attr:
            path = f"{name}/.pad/{size}"
        else:
            raise TorrentError("a file in the file list has no path")
        return self._finish_v1(item, path, size, attr, list(components or ()))

    def _finish_v1(
        self, d: dict[bytes, Any], path: str, size: int, attr: str, raw: Sequence[bytes]
    ) -> _Entry:
        if _PAD_MARKER in path and "p" not in attr:
            attr += "p"  # BitComet's pad files predate BEP 47's attribute
        symlink = None
        if "l" in attr:
            symlink = self._symlink(d)
            if symlink is None:
                attr = attr.replace("l", "")  # a symlink without a target is an empty file
        return _Entry(path, size, attr, symlink=symlink, raw=raw)

    # -- v2 files --------------------------------------------------------------

    def _walk_file_tree(
        self,
        tree: dict[bytes, Any],
        directory: str,
        has_files: bool,
        depth: int,
        raw_dir: tuple[bytes, ...],
        out: list[_Entry],
    ) -> None:
        if depth > 100:
            raise TorrentError("the file tree is nested too deeply")
        zero = _ZERO_ROOT
        for key, node in tree.items():
            if type(node) is not dict or not key:
                raise TorrentError("the file tree has an empty name or a malformed entry")
            leaf = len(node) == 1 and b"" in node
            single = leaf and not has_files and len(tree) == 1 and depth == 0
            component = sanitize_component(key.lstrip(b"/")) or "_"
            path = component if single else f"{directory}/{component}"
            if not leaf:
                self._walk_file_tree(node, path, True, depth + 1, (*raw_dir, key), out)
                continue
            d = node[b""]
            # the common case inline: a plain non-empty file (100,000-file torrents)
            if (
                type(d) is dict
                and b"attr" not in d
                and type(size := d.get(b"length")) is int
                and 0 < size <= _MAX_FILE_SIZE
                and type(root := d.get(b"pieces root")) is bytes
                and len(root) == 32
                and root != zero
            ):
                out.append(_Entry(path, size, "", root=root, raw=(*raw_dir, key)))
            else:
                out.append(self._v2_file(d, path, (*raw_dir, key)))

    def _v2_file(self, d: Any, path: str, raw: tuple[bytes, ...]) -> _Entry:
        if not isinstance(d, dict):
            raise TorrentError(f"file tree entry for {path!r} is not a dictionary")
        attr = _attr(d)
        if "p" in attr:
            raise TorrentError("a v2 file tree must not contain pad files")
        size = self._file_size(d, attr)
        symlink = self._symlink(d) if "l" in attr else None
        if "l" in attr and symlink is None:
            attr = attr.replace("l", "")
        root: bytes | None = None
        if symlink is None:
            root = _bytes(d, b"pieces root")
            if size > 0:
                if root is None or len(root) != 32:
                    raise TorrentError(f"file {path!r} has no valid pieces root")
                if root == bytes(32):
                    raise TorrentError(f"file {path!r} has an all-zero pieces root")
            elif root is not None and len(root) != 32:
                raise TorrentError(f"file {path!r} has an invalid pieces root")
            if size == 0:
                root = None
        return _Entry(path, size, attr, root=root, symlink=symlink, raw=raw)

    @staticmethod
    def _v2_layout(entries: list[_Entry], piece_length: int) -> list[_Entry]:
        """The v2 files with the pad files that align each one to a piece boundary."""
        layout: list[_Entry] = []
        offset = 0
        for e in entries:
            layout.append(e)
            offset += e.size
            rem = offset % piece_length
            if rem:
                pad = piece_length - rem
                layout.append(_Entry(".pad", pad, "p"))
                offset += pad
        return layout

    def _check_piece_layers(
        self, root: dict[bytes, Any], entries: list[_Entry], piece_length: int
    ) -> dict[bytes, bytes]:
        layers = root.get(b"piece layers")
        if layers is None:
            return {}  # allowed: clients fetch the layers from peers
        if not isinstance(layers, dict):
            return {}  # libtorrent ignores a malformed one like a missing one
        by_root: dict[bytes, int] = {}
        for e in entries:
            if e.root is not None and e.size > piece_length:
                by_root.setdefault(e.root, e.size)
        for key, layer in layers.items():
            if len(key) != 32 or not isinstance(layer, bytes) or len(layer) % 32:
                raise TorrentError("piece layers has a malformed entry")
            size = by_root.get(key)
            if size is None:
                raise TorrentError("piece layers has an entry for no file of the torrent")
            expected = -(-size // piece_length) * 32
            if len(layer) != expected:
                raise TorrentError(
                    f"a piece layer is {len(layer)} bytes, expected {expected} for its file"
                )
            if root_from_piece_layer(layer, piece_length) != key:
                raise TorrentError("a piece layer does not hash to its file's pieces root")
        return dict(layers)


def _offsets(entries: list[_Entry]) -> list[tuple[_Entry, int]]:
    out = []
    offset = 0
    for e in entries:
        out.append((e, offset))
        offset += e.size
    return out


def _same_layout(v2_layout: list[_Entry], v1_entries: list[_Entry]) -> bool:
    """libtorrent's test that a hybrid's two file lists describe the same files.

    The non-empty entries (pad files included) must match one by one in size,
    padding and name; the tail padding after the last file is optional in the
    v1 list. Empty files only have to be as many on both sides: where they sit
    between padding, and their names, are not compared.
    """
    if sum(1 for e in v2_layout if not e.size) != sum(1 for e in v1_entries if not e.size):
        return False
    a = [e for e in v2_layout if e.size]
    b = [e for e in v1_entries if e.size]
    if len(b) == len(a) - 1 and a and "p" in a[-1].attr:
        a = a[:-1]
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        x_pad = "p" in x.attr
        if x.size != y.size or x_pad != ("p" in y.attr):
            return False
        if not x_pad and list(x.raw) != list(y.raw):
            return False
    return True


def _resolve_duplicates(entries: list[_Entry]) -> None:
    """Rename files whose path (ignoring case) is taken, as libtorrent does.

    ``a/b.txt`` becomes ``a/b.1.txt``; a file that collides with a folder is
    renamed too. Pad files of the same size may share a path. A torrent that
    needs more than 100 tries is refused, as libtorrent refuses it.
    """
    taken: set[str] = set()
    for e in entries:
        p = e.path.lower()
        j = p.rfind("/")
        while j > 0:
            folder = p[:j]
            if folder in taken:
                break
            taken.add(folder)
            j = p.rfind("/", 0, j)
    pad_sizes: dict[str, int] = {}
    collisions = 0
    for e in entries:
        key = e.path.lower()
        is_pad = "p" in e.attr
        if key not in taken:
            taken.add(key)
            if is_pad:
                pad_sizes[key] = e.size
            continue
        if is_pad and pad_sizes.get(key) == e.size:
            continue
        slash = e.path.rfind("/")
        dot = e.path.rfind(".")
        base, ext = (e.path[:dot], e.path[dot:]) if dot > slash else (e.path, "")
        n = 0
        while True:
            n += 1
            candidate = f"{base}.{n}{ext}"
            if candidate.lower() not in taken:
                taken.add(candidate.lower())
                e.path = candidate
                break
            collisions += 1
            if collisions > _MAX_DUPLICATE_PATHS:
                raise TorrentError("torrent has too many files with the same path")


def _check_symlinks(symlinks: dict[int, str], paths: list[str]) -> None:
    """Drop symlink targets that are not files or folders of this torrent."""
    if not symlinks:
        return
    known = set(paths)
    for p in paths:
        parts = p.split("/")
        known.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for i, target in list(symlinks.items()):
        if target not in known:
            symlinks[i] = paths[i]


def _trackers(root: dict[bytes, Any]) -> list[list[str]]:
    tiers: list[list[str]] = []
    for tier in _list(root, b"announce-list") or []:
        if not isinstance(tier, list):
            continue
        urls: dict[str, None] = {}  # ordered and duplicate-free, in linear time
        for url in tier:
            if isinstance(url, bytes):
                text = url.decode("utf-8", "replace").lstrip()
                if text:
                    urls[text] = None
        if urls:
            tiers.append(list(urls))
    if not tiers:
        announce = _bytes(root, b"announce")
        if announce is not None:
            text = announce.decode("utf-8", "replace").lstrip()
            if text:
                tiers.append([text])
    return tiers


def _webseeds(root: dict[bytes, Any]) -> list[str]:
    value = root.get(b"url-list")
    items = [value] if isinstance(value, bytes) else value if isinstance(value, list) else []
    out: dict[str, None] = {}
    for item in items:
        if isinstance(item, bytes) and item:
            text = item.decode("utf-8", "replace").strip()
            if text:
                out[text] = None
    return list(out)


def _creation_date(root: dict[bytes, Any]) -> int | None:
    value = _int(root, b"creation date", -1)
    return value if value >= 0 else None


def _similar(d: dict[bytes, Any]) -> list[str]:
    return [s.hex() for s in _list(d, b"similar") or [] if isinstance(s, bytes) and len(s) == 20]


def _collections(d: dict[bytes, Any]) -> list[str]:
    return [
        s.decode("utf-8", "replace") for s in _list(d, b"collections") or [] if isinstance(s, bytes)
    ]
