"""The one seam to the kernel: ``nft -f -`` transactions, as upstream's knftables.

:class:`Nft` runs the real binary (optionally inside a network namespace via
``ip netns exec``, for tests and benchmarks; the proxy itself normally already
runs inside its node's namespace).  Tests use
:class:`kubesvc.testing.fakenft.FakeNft`, which has the same two methods.
"""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from .netns import setns_net


class NftError(Exception):
    """nft refused a transaction; the kernel applied none of it."""


class NftBackend(Protocol):
    def apply(self, text: str) -> None: ...

    def list_objects(self, family: str = "ip", name: str = "kubesvc") -> tuple[set[str], set[str]]: ...


_OBJ = re.compile(r"^\s*(chain|set|map)\s+(\S+)\s+\{", re.M)


class Nft:
    """The real nft binary."""

    def __init__(self, netns: str | None = None, binary: str = "nft", timeout: float = 120) -> None:
        self.netns = netns
        self.binary = binary
        self.timeout = timeout
        # namespaces are per thread and children inherit them: one thread joins the namespace once
        # and spawns every nft from there (cheaper than ``ip netns exec``, and no fork of a big heap)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"nft-{netns}", initializer=self._enter) \
            if netns else None

    def _enter(self) -> None:
        with open(f"/run/netns/{self.netns}") as f:
            setns_net(f.fileno())

    def _exec(self, args: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True,
                              timeout=self.timeout)

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        p = self._pool.submit(self._exec, args, stdin).result() if self._pool else self._exec(args, stdin)
        if p.returncode != 0:
            raise NftError((p.stderr or p.stdout).strip()[:2000] or f"nft exited {p.returncode}")
        return p.stdout

    def apply(self, text: str) -> None:
        self._run(["-f", "-"], stdin=text)

    def close(self) -> None:
        """End the thread inside the namespace (it would keep a deleted namespace alive)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def list_objects(self, family: str = "ip", name: str = "kubesvc") -> tuple[set[str], set[str]]:
        """Names of our chains and sets, without reading a single element or rule.

        ``nft -t list table`` looks terse but still fetches every element and
        rule of the table (over a second at 10,000 Services, several when the
        machine is busy); ``list chains`` / ``list sets`` / ``list maps`` of
        the family fetch only the objects (milliseconds at any size).  They
        print every table of the family: only our table's block counts.
        """
        out = self._run(["-t", "-f", "-"], stdin=f"list chains {family}\nlist sets {family}\nlist maps {family}\n")
        chains: set[str] = set()
        sets: set[str] = set()
        ours = False
        for line in out.splitlines():
            if line.startswith("table "):
                ours = line.split()[1:3] in ([family, name], [family, f'"{name}"'])
            elif ours and (m := _OBJ.match(line)) and not line.startswith("\t\t"):
                (chains if m.group(1) == "chain" else sets).add(m.group(2).strip('"'))
        return chains, sets

    def delete_table(self, family: str = "ip", name: str = "kubesvc") -> None:
        try:
            self._run(["delete", "table", family, name])
        except NftError:
            pass
