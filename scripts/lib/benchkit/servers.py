"""The bench's Postgres and Redis, started and stopped by scripts/lib/servers.sh.

scripts/test and scripts/run start their servers with the same functions (initdb as an unprivileged
user when root, readiness waits, stale-folder sweeps); the harness calls them rather than keeping a
second implementation.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .bench import BenchError


class Servers:
    """Calls the functions of scripts/lib/servers.sh, each in its own bash."""

    def __init__(self, root: Path) -> None:
        self.library = root / "scripts" / "lib" / "servers.sh"

    def call(self, function: str, *arguments: str | os.PathLike[str]) -> str:
        """FUNCTION ARGUMENTS in a bash that sourced servers.sh; its stdout, stderr passing through."""
        return self._bash(f'"{function}" "$@"', function, *arguments)

    def _bash(self, script: str, what: str, *arguments: str | os.PathLike[str]) -> str:
        command = ["bash", "-c", f'set -euo pipefail; source "$0"; {script}', os.fspath(self.library)]
        command += [os.fspath(argument) for argument in arguments]
        finished = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        if finished.returncode != 0:
            shown = " ".join([what, *(os.fspath(argument) for argument in arguments)])
            raise BenchError(f"{shown} failed (exit status {finished.returncode})")
        return finished.stdout

    def ensure_packages(self, *packages: str) -> None:
        """apt-get installs PACKAGES when missing, besides the project's default set."""
        self._bash('ensure_packages "${DEFAULT_PACKAGES[@]}" "$@"', "ensure_packages", *packages)

    def free_ports(self, count: int) -> list[int]:
        return [int(line) for line in self.call("free_ports", str(count)).split()]

    def pg_bindir(self) -> Path:
        return Path(self.call("pg_bindir").strip())

    def start_postgres(self, folder: Path, port: int) -> None:
        """A durable cluster (fsync and synchronous_commit on) in FOLDER, on PORT."""
        self.call("start_postgres", folder, str(port), "durable")

    def start_redis(self, folder: Path, port: int) -> None:
        self.call("start_redis", folder, str(port))

    def stop_servers_in(self, folder: Path) -> None:
        self.call("stop_servers_in", folder)

    def sweep_stale_scratch_dirs(self, pattern: str) -> None:
        self.call("sweep_stale_scratch_dirs", pattern)
