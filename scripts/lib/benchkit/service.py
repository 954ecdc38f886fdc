"""A service under benchmark: its private executable, databases, process, readiness and stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from .bench import Bench, BenchError, process_alive, say, show_log_tail, warn


def private_copy(bench: Bench, name: str, folder: Path) -> Path:
    """A copy of the executable NAME in FOLDER (a rebuild of .build/release during the run cannot touch it)."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / name
    shutil.copy(bench.executables[name], copy)
    return copy


def create_databases(bench: Bench, executable: Path, *databases: str) -> None:
    """Creates DATABASES on the bench's Postgres and runs `EXECUTABLE migrate` on each (its output in
    migrate.log beside the executable)."""
    bench.psql("postgres", "".join(f"CREATE DATABASE {database};\n" for database in databases))
    say(f"{executable.name} migrate (databases {' and '.join(databases)})")
    log_path = executable.parent / "migrate.log"
    with log_path.open("ab") as log:
        for database in databases:
            environment = {**os.environ, "DATABASE_URL": bench.database_url_of(database), "LOG_LEVEL": "warning"}
            if subprocess.run([executable, "migrate"], env=environment, stdout=log, stderr=log, check=False).returncode:
                show_log_tail(log_path, 20)
                raise BenchError(f"{executable.name} migrate failed (database {database})")


class Service:
    """`NAME serve` on a free port of 127.0.0.1, from a private copy of the executable (a rebuild of
    .build/release during the run cannot touch it), its output in FOLDER/LOG. With COMMAND, that
    command of EXECUTABLE instead (e.g. platform-bench's receiver), ready when READY_PATH answers."""

    def __init__(
        self,
        bench: Bench,
        name: str,
        folder: Path,
        log: str = "service.log",
        executable: Path | None = None,
        command: str = "serve",
        ready_path: str = "/readyz",
    ) -> None:
        self.bench = bench
        self.name = name
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.executable = private_copy(bench, name, folder) if executable is None else executable
        self.command = command
        self.ready_path = ready_path
        self.log = folder / log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        bench.services.append(self)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def create_databases(self, *databases: str) -> None:
        create_databases(self.bench, self.executable, *databases)

    def start(self, port: int, environment: Mapping[str, str]) -> None:
        """Starts `NAME serve --port PORT` with ENVIRONMENT added, and waits (30 s at most) until it is ready."""
        self.url = f"http://127.0.0.1:{port}"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [self.executable, self.command, "--host", "127.0.0.1", "--port", str(port)],
                env={**os.environ, **environment},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2):
                    return
            except (urllib.error.URLError, OSError):
                pass
            if self.process.poll() is not None or time.monotonic() >= deadline:
                show_log_tail(self.log, 30)
                raise BenchError(f"{self.name} {self.command} did not become ready on {self.url}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (resumed first if paused), then SIGKILL after 15 s."""
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.kill(process.pid, signal.SIGCONT)
            process.terminate()
            process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            warn(f"{self.name} (pid {process.pid}) did not stop within 15 s; killing it")
            process.kill()
            process.wait()

    def alive(self) -> bool:
        return self.pid is not None and process_alive(self.pid)
