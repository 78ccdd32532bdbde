"""A class-data-sharing archive of the classes a Spark build loads, made by pinsights on this machine.

Spark's JVM loads and verifies tens of thousands of classes from PySpark's jars before and during
a build's first queries: almost half of the CPU time it takes to start a session and run a first
job (docs/benchmarks-history.md). Java 17 can map classes from an archive instead
(application class-data sharing): already parsed and verified, and shared by every JVM that
starts with the same Java and class path.

No archive is downloaded or shipped: the first local build records one. Its JVM writes the
classes it loaded into a temporary file as it exits (``-XX:ArchiveClassesAtExit``), and the build
waits for that and moves the file into place atomically, so a build never sees half an archive;
every later build starts from it (``-XX:SharedArchiveFile``). The archive's name carries a digest
of what it depends on (the ``java`` executable, PySpark's version, its jars and where they are),
so after an upgrade, or from another virtual environment, a new one is recorded; a stale or damaged archive is refused by the JVM itself, which then loads
classes as usual. A cache directory that cannot be written means no archive, nothing else.

``PINSIGHTS_SPARK_CLASS_ARCHIVE`` names the directory to keep it in (default
``$XDG_CACHE_HOME/pinsights``, i.e. ``~/.cache/pinsights``), or ``off``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ENV = "PINSIGHTS_SPARK_CLASS_ARCHIVE"
#: How long a build waits for its exiting JVM to write a recorded archive.
WRITE_TIMEOUT_S = 120
#: A recording left behind by a build that was killed is removed after this long.
STALE_RECORDING_S = 24 * 3600


@dataclass(frozen=True)
class ClassArchive:
    """The archive for this Java and PySpark, and where its recording goes while it is missing."""

    path: Path
    recording: Path | None = None  # set: this JVM records the archive as it exits

    def java_options(self) -> str:
        if self.recording is not None:
            return f"-XX:ArchiveClassesAtExit={self.recording}"
        return f"-XX:SharedArchiveFile={self.path}"

    def finish(self, jvm: subprocess.Popen[bytes] | None) -> None:
        """After the session stopped: let the JVM exit (closing its stdin is PySpark's signal),
        wait while it writes the recording, and publish the recording atomically."""
        if self.recording is None or jvm is None:
            return
        try:
            if jvm.stdin is not None:
                jvm.stdin.close()
            status = jvm.wait(timeout=WRITE_TIMEOUT_S)
            if status == 0 and self.recording.stat().st_size > 0:
                os.replace(self.recording, self.path)
        except (OSError, subprocess.TimeoutExpired):
            pass  # no archive this time; the next build records one
        finally:
            self.recording.unlink(missing_ok=True)


def class_archive(java: str) -> ClassArchive | None:
    """The archive to start Spark's JVM with (recording it when missing); None when turned off
    or when the cache directory cannot be written."""
    setting = os.environ.get(ENV, "")
    if setting.lower() == "off":
        return None
    directory = Path(setting) if setting else _cache_home() / "pinsights"
    path = directory / f"spark-classes-{_digest(java)}.jsa"
    if path.is_file():
        return ClassArchive(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _remove_stale_recordings(directory)
        recording = directory / f"{path.stem}.{os.getpid()}.recording"
        recording.touch()  # writable? (the JVM replaces it)
        recording.unlink()
    except OSError:
        return None
    return ClassArchive(path, recording)


def _cache_home() -> Path:
    configured = os.environ.get("XDG_CACHE_HOME")
    return Path(configured) if configured else Path.home() / ".cache"


def _digest(java: str) -> str:
    """What the archive depends on: the JVM (its file) and the class path (PySpark's jars, where
    they are: the JVM refuses an archive recorded with another class path, e.g. another venv's)."""
    import pyspark

    executable = Path(java).resolve()
    stat = executable.stat()
    parts = [str(executable), str(stat.st_size), str(stat.st_mtime_ns), pyspark.__version__]
    jars = Path(pyspark.__file__).parent / "jars"
    parts.append(str(jars.resolve()))
    if jars.is_dir():
        parts += sorted(f"{jar.name}:{jar.stat().st_size}" for jar in jars.iterdir())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _remove_stale_recordings(directory: Path) -> None:
    now = time.time()
    for leftover in directory.glob("*.recording"):
        try:
            if now - leftover.stat().st_mtime > STALE_RECORDING_S:
                leftover.unlink()
        except OSError:
            continue
