"""The image catalog: image names mapped to programs on this machine.

There are no image pulls here.  An image is an ENTRYPOINT and a CMD, as in
its real manifest, over programs that exist on the host (``sleep``, ``sh``,
``curl``...) or small Python stand-ins that behave like the real thing on the
wire (``nginx``'s welcome page, ``agnhost netexec``).  Upstream's rule then
applies unchanged: ``command`` replaces the ENTRYPOINT, ``args`` the CMD.
Any image runs a container with an explicit ``command``; an unknown image
without one fails like a pull of a missing image.

This module is imported by the stand-in programs too, so it stays stdlib-only.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass

_PY = (sys.executable, "-m")


@dataclass(frozen=True)
class Image:
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    # program names inside this image that map to a stand-in, e.g. "nginx" → python -m ...nginx
    programs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    host_tools: bool = True  # other argv[0]s resolve to host programs (busybox applets, curl)


_NGINX = (("nginx", (*_PY, "kubesvc.agent.images.nginx")),)
_AGNHOST = (("/agnhost", (*_PY, "kubesvc.agent.images.agnhost")),
            ("agnhost", (*_PY, "kubesvc.agent.images.agnhost")))
_SERVE = (("/serve_hostname", (*_PY, "kubesvc.agent.images.agnhost", "serve-hostname")),)
_PAUSE = (("/pause", ("sleep", "infinity")),)

CATALOG: dict[str, Image] = {
    "nginx": Image(("/docker-entrypoint.sh",), ("nginx", "-g", "daemon off;"), _NGINX),
    "agnhost": Image(("/agnhost",), (), _AGNHOST),
    "serve-hostname": Image(("/serve_hostname",), (), _SERVE),
    "serve_hostname": Image(("/serve_hostname",), (), _SERVE),
    "pause": Image(("/pause",), (), _PAUSE),
    "busybox": Image((), ("sh",)),
    "curl": Image(("curl",), ()),
    "alpine": Image((), ("/bin/sh",)),
}


def image_name(image: str) -> str:
    """The repository's last path component, without registry, tag or digest.

    ``registry.k8s.io/e2e-test-images/agnhost:2.52`` → ``agnhost``;
    ``docker.io/library/nginx@sha256:...`` → ``nginx``; ``curlimages/curl`` → ``curl``.
    """
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[0].lower()


def lookup(image: str) -> Image | None:
    return CATALOG.get(image_name(image))


def known_images() -> list[str]:
    return sorted(CATALOG)


class ImageNotFound(Exception):
    """No such image in the catalog and no command to run instead (upstream: ErrImagePull)."""


class ExecNotFound(Exception):
    """The resolved program does not exist on the host (upstream: StartError, exit 128)."""


def resolve(image: str, command: list[str] | None, args: list[str] | None) -> list[str]:
    """The argv to run for a container, by upstream's ENTRYPOINT/CMD rule."""
    img = lookup(image)
    if img is None:
        if not command:
            raise ImageNotFound(image)
        img = Image((), ())
    if command:
        argv = list(command) + list(args or [])
    else:
        argv = list(img.entrypoint) + (list(args) if args else list(img.cmd))
    if argv[:1] == ["/docker-entrypoint.sh"]:  # nginx's entrypoint script runs its arguments
        argv = argv[1:] or ["nginx"]
    if not argv:
        raise ExecNotFound("no command specified")
    programs = dict(img.programs)
    if argv[0] in programs:
        return list(programs[argv[0]]) + argv[1:]
    exe = argv[0] if "/" in argv[0] else shutil.which(argv[0])
    if exe is None or not os.path.isfile(exe) or not os.access(exe, os.X_OK):
        raise ExecNotFound(f'exec: "{argv[0]}": executable file not found in $PATH')
    return [exe, *argv[1:]]
