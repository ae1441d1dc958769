"""The sandbox: allowed roots, race-free path resolution inside them, and atomic writes.

Every path a tool receives is resolved here, one component at a time, with ``openat``-style calls
(``os.open(name, dir_fd=...)`` with ``O_NOFOLLOW``) on directory descriptors the resolver holds. A path
is never handed to the kernel as a whole string, so a directory swapped for a symbolic link between a
check and its use cannot redirect an operation: the resolver either holds the real directory or sees
the link and judges its target itself.

Rules (the reasons a path is refused):

* NUL bytes, invalid Unicode, more than 4096 bytes (PATH_MAX) or a component over 255 bytes (NAME_MAX).
* A leading ``~``: there is no home-directory expansion.
* An absolute path that is not inside an allowed root. A relative path is taken from the first root.
  With nested roots, an absolute path belongs to the longest root that contains it.
* ``..`` that climbs above the root, whether written in the path or reached through a symbolic link.
* A symbolic link whose target leaves the root it is in (another root included); links that stay inside
  are followed, at most 40 of them per path (the kernel's own limit).
* Writes (write, create, move) through a read-only root, or into a directory that is itself a read-only
  root nested in a writable one. The roots themselves are never moved or replaced.

The tools add (see :mod:`services.filesystem.operations`): only regular files are read or written (no
devices, FIFOs or sockets), and never one with more than one hard link, since another link to the same
file may lie outside the roots. Writes replace the directory entry atomically, so they cannot write
through a link of any kind.

Nothing else is decoded: ``%2e%2e`` and fullwidth dots are ordinary file names.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import stat
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from libmcp import ToolError

NAME_MAX = 255
PATH_MAX = 4096
MAX_SYMLINKS = 40
_MAX_RETRIES = 16
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SHOWN_CHARS = 200

EntryType = Literal[
    "file", "directory", "symlink", "fifo", "socket", "character_device", "block_device", "other"
]


@dataclass(frozen=True)
class Root:
    """One allowed directory: ``path`` is absolute with its own links resolved; ``configured`` as written."""

    path: str
    writable: bool
    configured: str

    @property
    def mode(self) -> Literal["ro", "rw"]:
        return "rw" if self.writable else "ro"


def parse_roots(value: str) -> tuple[Root, ...]:
    """Parse ``ALLOWED_PATHS`` (``/a:ro,/b:rw``); a path with no suffix is read-only.

    Raises ValueError (pydantic turns it into a settings error naming ALLOWED_PATHS).
    """
    roots: list[Root] = []
    seen: dict[str, str] = {}
    for raw in value.split(","):
        entry = raw.strip()
        if not entry:
            continue
        path, sep, mode = entry.rpartition(":")
        if not sep:
            path, mode = entry, "ro"
        if mode not in ("ro", "rw"):
            raise ValueError(f"entry {entry!r}: the mode after ':' must be ro or rw")
        if not path or "\x00" in path:
            raise ValueError(f"entry {entry!r}: the path is empty or contains a NUL byte")
        if ":" in path:
            raise ValueError(
                f"entry {entry!r}: write each root as PATH:ro or PATH:rw (paths may not contain ':')"
            )
        configured = os.path.abspath(os.path.expanduser(path))
        resolved = os.path.realpath(configured)
        if resolved in seen:
            raise ValueError(f"entry {entry!r}: the same directory as {seen[resolved]!r}")
        seen[resolved] = entry
        roots.append(Root(path=resolved, writable=mode == "rw", configured=configured))
    if not roots:
        raise ValueError("at least one root is needed, e.g. /workspace:rw")
    return tuple(roots)


def show(path: str) -> str:
    """A path as error messages quote it: repr (NUL bytes and odd characters visible), long ones cut."""
    text = repr(path)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 5] + "...'"


class SandboxError(ToolError):
    """A path was refused or an operation on it failed; the message names the path and the reason."""

    def __init__(self, path: str, reason: str, *, refused: bool = True) -> None:
        prefix = "Refused path" if refused else "Path"
        super().__init__(f"{prefix} {show(path)}: {reason}")
        self.path = path
        self.reason = reason


def refused(path: str, reason: str) -> SandboxError:
    return SandboxError(path, reason, refused=True)


def failed(path: str, reason: str) -> SandboxError:
    return SandboxError(path, reason, refused=False)


def describe_os_error(error: OSError) -> str:
    """The reason an OS call failed, in words a model can act on."""
    reasons = {
        errno.ENOENT: "does not exist",
        errno.EEXIST: "already exists",
        errno.ENOTDIR: "a component of the path is not a directory",
        errno.EISDIR: "is a directory",
        errno.ENOTEMPTY: "is a directory that is not empty",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.ELOOP: "is a symbolic link (changed while in use)",
        errno.ENAMETOOLONG: "name too long",
        errno.ENOSPC: "no space left on the device",
        errno.EROFS: "the file system is mounted read-only",
        errno.EXDEV: "source and destination are on different file systems (not supported)",
        errno.EINVAL: "invalid operation (moving a directory into itself?)",
        errno.EBUSY: "is busy (a mount point?)",
    }
    return reasons.get(error.errno or 0, error.strerror or type(error).__name__)


def kind_of(mode: int) -> EntryType:
    """The type name of a file mode, as the tools report it."""
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode):
        return "character_device"
    if stat.S_ISBLK(mode):
        return "block_device"
    return "other"


@dataclass
class Location:
    """A resolved path: an open directory inside a root and, unless the path is that directory, a name in it.

    ``name`` is ``None`` when the path designates the directory ``dir_fd`` itself. The descriptor is
    owned by the location and closed by :meth:`close` (or by leaving the ``with`` block).
    ``in_read_only_root`` is true when the directory lies in a read-only root (nested ones included);
    ``None`` when the caller did not ask (``check_read_only_root=False``).
    ``status`` is the final name's own status (``lstat``) as seen while resolving, when a final link
    was checked for (``follow_final``) and the name existed; it is a snapshot to decide *before* opening
    (never open a device or a FIFO), not a proof: whoever opens the name must compare it with ``fstat``.
    """

    root: Root
    dir_fd: int
    name: str | None
    components: list[str]
    created: bool = False
    in_read_only_root: bool | None = False
    status: os.stat_result | None = None

    @property
    def display(self) -> str:
        """The canonical absolute path (symbolic links resolved) reported back to clients."""
        parts = [*self.components, *([self.name] if self.name is not None else [])]
        return "/".join([self.root.path.rstrip("/"), *parts]) if parts else self.root.path

    @property
    def dir_display(self) -> str:
        return "/".join([self.root.path.rstrip("/"), *self.components]) if self.components else self.root.path

    def close(self) -> None:
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1

    def __enter__(self) -> Location:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Walk:
    """The state of one resolution: a stack of open directories from the root down."""

    root: Root
    shown: str
    stack: list[int]
    names: list[str] = field(default_factory=list)
    pending: deque[str] = field(default_factory=deque)
    links: int = 0
    retries: int = 0
    last_link: str | None = None

    def close(self) -> None:
        while self.stack:
            os.close(self.stack.pop())

    def where(self, name: str | None = None) -> str:
        parts = [*self.names, *([name] if name is not None else [])]
        return "/".join([self.root.path.rstrip("/"), *parts]) if parts else self.root.path


class Sandbox:
    """Resolves tool paths inside the allowed roots; every descriptor it returns lies inside one."""

    def __init__(self, roots: tuple[Root, ...]) -> None:
        if not roots:
            raise ValueError("a sandbox needs at least one root")
        self.roots = roots

    # Lexical checks -------------------------------------------------------------------------

    def split(self, path: str) -> tuple[Root, list[str]]:
        """Check a path's text and find its root; returns the root and the components below it."""
        if "\x00" in path:
            raise refused(path, "contains a NUL byte")
        try:
            encoded = path.encode("utf-8")
        except UnicodeEncodeError:
            raise refused(path, "is not valid Unicode (lone surrogate)") from None
        if len(encoded) > PATH_MAX:
            raise refused(path, f"is {len(encoded)} bytes long; the limit is {PATH_MAX} (PATH_MAX)")
        parts = path.split("/")
        for part in parts if len(encoded) > NAME_MAX else ():  # a shorter path has no longer component
            if len(part.encode("utf-8")) > NAME_MAX:
                raise refused(
                    path,
                    f"has a component of {len(part.encode('utf-8'))} bytes; "
                    f"the limit is {NAME_MAX} (NAME_MAX)",
                )
        if path.startswith("~"):
            raise refused(
                path,
                "'~' is not expanded; give a path inside an allowed root "
                "(relative paths start at the first root)",
            )
        components = [part for part in parts if part not in ("", ".")]
        if not path.startswith("/"):
            return self.roots[0], components
        best: tuple[int, Root] | None = None
        for root in self.roots:
            for base in {root.path, root.configured}:
                base_parts = [part for part in base.split("/") if part]
                if components[: len(base_parts)] == base_parts and (
                    best is None or len(base_parts) > best[0]
                ):
                    best = (len(base_parts), root)
        if best is None:
            allowed = ", ".join(root.path for root in self.roots)
            raise refused(path, f"is outside the allowed roots ({allowed})")
        return best[1], components[best[0] :]

    # Resolution -----------------------------------------------------------------------------

    def locate(
        self,
        path: str,
        *,
        write: bool = False,
        follow_final: bool = True,
        create_parents: bool = False,
        check_read_only_root: bool = True,
    ) -> Location:
        """Resolve ``path`` to an open parent directory and a final name (which may not exist yet).

        With ``follow_final`` a final symbolic link is followed (if it stays inside the root), so the
        name returned is never a link at the time of the check. With ``write`` the root must be writable;
        ``create_parents`` creates missing directories on the way. A reader that never looks at
        ``in_read_only_root`` passes ``check_read_only_root=False`` to save its system calls (writes
        check nested read-only roots regardless).
        """
        return self._resolve(
            path,
            target="entry",
            write=write,
            follow_final=follow_final,
            create=create_parents,
            check_read_only_root=check_read_only_root,
        )

    def open_directory(self, path: str, *, write: bool = False, create: bool = False) -> Location:
        """Resolve ``path`` to an open directory (``name`` is None), creating it and its parents if asked."""
        return self._resolve(
            path, target="directory", write=write, follow_final=True, create=create, check_read_only_root=True
        )

    def _resolve(
        self,
        path: str,
        *,
        target: Literal["entry", "directory"],
        write: bool,
        follow_final: bool,
        create: bool,
        check_read_only_root: bool,
    ) -> Location:
        root, components = self.split(path)
        if write and not root.writable:
            raise refused(path, f"the root {root.path} is read-only")
        try:
            root_fd = os.open(root.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise failed(path, f"the root {root.path} is not available: {describe_os_error(exc)}") from None
        walk = _Walk(root=root, shown=path, stack=[root_fd], pending=deque(components))
        read_only_roots = self._root_ids() if write or check_read_only_root else set()
        created = False
        try:
            while walk.pending:
                component = walk.pending.popleft()
                if component == "..":
                    if not walk.names:
                        through = f" through the symbolic link {walk.last_link}" if walk.last_link else ""
                        raise refused(path, f"'..' leads outside the root {root.path}{through}")
                    os.close(walk.stack.pop())
                    walk.names.pop()
                    continue
                if not walk.pending and target == "entry":
                    status = self._own_status(walk, component) if follow_final else None
                    if status is not None and stat.S_ISLNK(status.st_mode):
                        self._expand_link(walk, component)
                        continue
                    nested = self._inside(walk.stack, read_only_roots) if check_read_only_root else None
                    fd = walk.stack.pop()
                    return Location(root, fd, component, list(walk.names), created, nested, status)
                opened = self._open_component(walk, component, create=create)
                if opened is None:
                    self._expand_link(walk, component)
                    continue
                fd, made = opened
                created = created or made
                walk.stack.append(fd)
                walk.names.append(component)
                if write:
                    self._refuse_read_only_root(walk, fd, read_only_roots)
            nested = self._inside(walk.stack, read_only_roots)
            fd = walk.stack.pop()
            return Location(root, fd, None, list(walk.names), created, nested)
        finally:
            walk.close()

    def is_root(self, info: os.stat_result, *, read_only: bool = False) -> bool:
        """True when ``info`` describes one of the roots (with ``read_only``: a read-only one)."""
        return (info.st_dev, info.st_ino) in self._root_ids(include_writable=not read_only)

    def _root_ids(self, *, include_writable: bool = False) -> set[tuple[int, int]]:
        ids = set()
        for root in self.roots:
            if include_writable or not root.writable:
                try:
                    info = os.stat(root.path)
                except OSError:
                    continue
                ids.add((info.st_dev, info.st_ino))
        return ids

    @staticmethod
    def _inside(fds: list[int], read_only_roots: set[tuple[int, int]]) -> bool:
        """True when one of the open directories is a read-only root."""
        if not read_only_roots:
            return False
        for fd in fds:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) in read_only_roots:
                return True
        return False

    @staticmethod
    def _refuse_read_only_root(walk: _Walk, fd: int, read_only_roots: set[tuple[int, int]]) -> None:
        """Writes may not enter a read-only root nested in a writable one (checked before any mkdir)."""
        if read_only_roots:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) in read_only_roots:
                raise refused(walk.shown, f"{walk.where()} is a read-only root")

    @staticmethod
    def _own_status(walk: _Walk, name: str) -> os.stat_result | None:
        """The name's own status (a link is not followed); None when it does not exist."""
        try:
            return os.stat(name, dir_fd=walk.stack[-1], follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise failed(walk.shown, f"{walk.where(name)}: {describe_os_error(exc)}") from None

    def _open_component(self, walk: _Walk, name: str, *, create: bool) -> tuple[int, bool] | None:
        """Open a directory component without following links; None means it is a link to expand."""
        made = False
        for _ in range(_MAX_RETRIES):
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=walk.stack[-1]), made
            except FileNotFoundError:
                if not create:
                    raise failed(walk.shown, f"{walk.where(name)} does not exist") from None
                try:
                    os.mkdir(name, 0o777, dir_fd=walk.stack[-1])
                    made = True
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise failed(
                        walk.shown, f"cannot create {walk.where(name)}: {describe_os_error(exc)}"
                    ) from None
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise failed(walk.shown, f"{walk.where(name)}: {describe_os_error(exc)}") from None
                try:
                    info = os.stat(name, dir_fd=walk.stack[-1], follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISLNK(info.st_mode):
                    return None
                if not stat.S_ISDIR(info.st_mode):
                    raise failed(
                        walk.shown, f"{walk.where(name)} is a {kind_of(info.st_mode)}, not a directory"
                    ) from None
        raise refused(walk.shown, f"{walk.where(name)} kept changing while it was resolved")

    def _expand_link(self, walk: _Walk, name: str) -> None:
        """Replace a symbolic link component by its target, refusing targets outside the root."""
        try:
            target = os.readlink(name, dir_fd=walk.stack[-1])
        except OSError:
            # No longer a link (swapped back): resolve the component again, a bounded number of times.
            walk.retries += 1
            if walk.retries > _MAX_RETRIES:
                raise refused(walk.shown, f"{walk.where(name)} kept changing while it was resolved") from None
            walk.pending.appendleft(name)
            return
        link = walk.where(name)
        walk.links += 1
        if walk.links > MAX_SYMLINKS:
            raise refused(walk.shown, f"more than {MAX_SYMLINKS} symbolic links (a loop?)")
        if not target:
            raise refused(walk.shown, f"the symbolic link {link} is empty")
        walk.last_link = link
        target_parts = [part for part in target.split("/") if part not in ("", ".")]
        if target.startswith("/"):
            below = self._below_root(walk.root, target_parts)
            if below is None:
                raise refused(
                    walk.shown, f"the symbolic link {link} points outside the root {walk.root.path}"
                )
            while len(walk.stack) > 1:
                os.close(walk.stack.pop())
            walk.names.clear()
            target_parts = below
        walk.pending.extendleft(reversed(target_parts))

    @staticmethod
    def _below_root(root: Root, parts: list[str]) -> list[str] | None:
        for base in (root.path, root.configured):
            base_parts = [part for part in base.split("/") if part]
            if parts[: len(base_parts)] == base_parts:
                return parts[len(base_parts) :]
        return None


# Writes --------------------------------------------------------------------------------------


def atomic_write(dir_fd: int, name: str, data: bytes, *, like: os.stat_result | None = None) -> None:
    """Replace ``name`` in ``dir_fd`` with ``data`` so readers see the old file or the new one, never a part.

    The data goes to a temporary file in the same directory, is flushed to disk, renamed over the name,
    and the directory is flushed too. ``like`` (the file being replaced) gives the mode and owner to keep.
    The rename replaces the directory entry: other hard links to the old file are left untouched.
    """
    temporary = f".{name[:40]}.{secrets.token_hex(6)}.tmp"
    mode = stat.S_IMODE(like.st_mode) if like is not None else 0o644
    fd = os.open(
        temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
    )
    try:
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if like is not None and os.geteuid() == 0:
                os.fchown(fd, like.st_uid, like.st_gid)
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    os.fsync(dir_fd)


_RENAME_NOREPLACE = 1


def _load_renameat2() -> Any:
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def rename_no_replace(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """Rename without ever replacing an existing destination (``renameat2(RENAME_NOREPLACE)``).

    Raises FileExistsError when the destination exists. Where the C library or the file system lacks
    ``renameat2``, falls back to check-then-rename.
    """
    if _renameat2 is not None:
        result = _renameat2(src_dir_fd, os.fsencode(src), dst_dir_fd, os.fsencode(dst), _RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code))
    try:
        os.stat(dst, dir_fd=dst_dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))


@contextmanager
def opened_directory_entry(dir_fd: int, name: str) -> Iterator[int]:
    """Open a subdirectory without following links (for walking a tree); closes it afterwards."""
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)
