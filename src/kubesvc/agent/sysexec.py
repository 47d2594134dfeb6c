"""The one door to host commands (``ip``, ``sysctl``...): an async runner.

Why an adapter: the network plans (host bridge, node and pod namespaces) are
pure lists of commands, so unit tests check them against a recording fake
without root, and the real runner keeps the agent's single event loop free
(every command is an asyncio subprocess, never ``subprocess.run``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("kubesvc.agent.sysexec")


class CommandError(Exception):
    """A command that had to succeed did not; carries its stderr for the log line."""

    def __init__(self, argv: Sequence[str], rc: int, stderr: str) -> None:
        self.argv, self.rc, self.stderr = list(argv), rc, stderr
        super().__init__(f"{' '.join(argv)}: exit {rc}: {stderr.strip()}")


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


class Runner(Protocol):
    async def run(self, argv: Sequence[str], *, input: str | None = None, check: bool = True) -> Result: ...


class HostRunner:
    """Runs commands on the host as asyncio subprocesses."""

    async def run(self, argv: Sequence[str], *, input: str | None = None, check: bool = True) -> Result:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(input.encode() if input is not None else None)
        res = Result(proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
        if check and res.rc != 0:
            raise CommandError(argv, res.rc, res.stderr)
        return res


async def ip_batch(runner: Runner, lines: Sequence[str], *, netns: str | None = None, force: bool = False) -> Result:
    """Run many ``ip`` commands in one process (``ip -batch -``): one fork, not one per line.

    ``force`` keeps going past failing lines (teardown: a missing link is fine).
    """
    argv = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else []) + ["-batch", "-"]
    return await runner.run(argv, input="\n".join(lines) + "\n", check=not force)
