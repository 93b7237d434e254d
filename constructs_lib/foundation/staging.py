"""Asset folders staged once per content: the files an asset holds, copied into a folder of the project's
.build/assets/ named by their hash, so CDK fingerprints a small folder and the asset hash changes only with
the code. (Inside the project rather than the shared temporary folder, which other users of the machine
could write to first and cleaners could empty.)"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

BUILD = Path(__file__).resolve().parents[2] / ".build" / "assets"
SKIPPED = ("__pycache__",)


def package_files(root: Path, folder: Path, *, skip: Iterable[str] = ()) -> dict[str, Path]:
    """Every file under ``folder`` by its path relative to ``root``, without bytecode or ``skip``ped names."""
    skipped = (*SKIPPED, *skip)
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.suffix != ".pyc" and not any(part in skipped for part in path.parts)
    }


def staged(files: Mapping[str, Path], prefix: str) -> Path:
    """A folder holding ``files`` (relative path -> source file), made once per content and reused."""
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode() + (b"\1" if _executable(files[relative]) else b"\0"))
        digest.update(files[relative].read_bytes())

    def write(staging: Path) -> None:
        for relative, source in files.items():
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
            # Only the executable bit travels (a wrapper script Lambda runs): the asset zip keeps file modes.
            os.chmod(destination, 0o755 if _executable(source) else 0o644)

    return _stage_once(f"{prefix}-{digest.hexdigest()[:16]}", write)


def staged_content(contents: Mapping[str, bytes], prefix: str) -> Path:
    """A folder holding generated files (relative path -> bytes), made once per content and reused."""
    digest = hashlib.sha256()
    for relative in sorted(contents):
        digest.update(relative.encode() + b"\0" + contents[relative])

    def write(staging: Path) -> None:
        for relative, content in contents.items():
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(content)
            os.chmod(destination, 0o644)

    return _stage_once(f"{prefix}-{digest.hexdigest()[:16]}", write)


def _stage_once(name: str, write: Callable[[Path], None]) -> Path:
    """BUILD/<name>, written by ``write`` into a fresh folder and renamed into place unless it exists."""
    BUILD.mkdir(parents=True, exist_ok=True)
    target = BUILD / name
    if not target.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-staging-", dir=BUILD))
        write(staging)
        try:
            staging.rename(target)
        except OSError:  # another synth staged the same content first
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _executable(path: Path) -> bool:
    return bool(path.stat().st_mode & stat.S_IXUSR)
