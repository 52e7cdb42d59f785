"""Running the `cogmora` command as a user would, for every end-to-end test: one way to
find it, one way to run it, so a change of how it is launched is made once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

COGMORA = str(Path(sys.executable).with_name("cogmora"))


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`cogmora ARGS` with `env` over this process's environment: (exit code, out, err)."""
    proc = await asyncio.create_subprocess_exec(
        COGMORA,
        *args,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


def run_sync(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The same, blocking, for tests that are not async."""
    return subprocess.run(
        [COGMORA, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
