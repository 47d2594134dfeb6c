"""``podexec``: a tiny C program that puts a container into its pod, then execs it.

Forking the agent (a Python process of 100+ MiB) to run a ``preexec_fn``
costs milliseconds of page-table copying per container; a ``vfork`` of this
launcher costs a fraction of that.  The launcher does what ``ip netns exec``
and ``unshare --uts`` did, in one exec: join the pod's network namespace, new
mount and UTS namespaces, ``/`` made a slave (nothing leaks back to the host),
the host's ``/run/netns`` detached (a pod has no business with other pods'
namespaces, and while it was there every pod namespace made or removed on the
host was propagated into every running container's mount namespace: ~0.3 ms
more per namespace with 100 containers running),
``/sys`` remounted for the pod's network, every ``/etc/netns/<ns>/NAME``
bound over ``/etc/NAME``, the hostname set; then it execs the container's
program (PATH lookup as a shell's ``exec``: 127 when not found, 126 when not
executable, the message in the container's log).

It is built from the source below with the machine's C compiler on first use
(cached by the source's hash); without a compiler :func:`launcher` returns
None and containers are started with a ``preexec_fn`` doing the same steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger("kubesvc.agent")

CACHE_DIR = Path("/run/kubesvc")

SOURCE = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* podexec NETNS_PATH HOSTNAME ETC_DIR PROGRAM [ARG...] */

static void fail(const char *what, const char *arg) {
    dprintf(2, "kubesvc-podexec: %s %s: %s\n", what, arg, strerror(errno));
    _exit(127);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        dprintf(2, "usage: podexec NETNS_PATH HOSTNAME ETC_DIR PROGRAM [ARG...]\n");
        return 127;
    }
    int fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open", argv[1]);
    if (setns(fd, CLONE_NEWNET) != 0) fail("setns", argv[1]);
    close(fd);
    if (unshare(CLONE_NEWNS | CLONE_NEWUTS) != 0) fail("unshare", "");
    if (mount("", "/", "none", MS_SLAVE | MS_REC, NULL) != 0) fail("mount --make-rslave", "/");
    umount2("/run/netns", MNT_DETACH); /* the host's namespace mounts: not the pod's, and each would propagate here */
    struct statvfs sv;
    unsigned long sysflags = (statvfs("/sys", &sv) == 0 && (sv.f_flag & ST_RDONLY)) ? MS_RDONLY : 0;
    if (umount2("/sys", MNT_DETACH) == 0) mount("sysfs", "/sys", "sysfs", sysflags, NULL);
    if (argv[3][0]) {
        DIR *d = opendir(argv[3]);
        if (d) {
            struct dirent *e;
            char src[4096], dst[4096];
            while ((e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.') continue;
                snprintf(src, sizeof src, "%s/%s", argv[3], e->d_name);
                snprintf(dst, sizeof dst, "/etc/%s", e->d_name);
                if (access(dst, F_OK) != 0) continue;
                if (mount(src, dst, "none", MS_BIND, NULL) != 0) fail("bind", dst);
            }
            closedir(d);
        }
    }
    if (sethostname(argv[2], strlen(argv[2])) != 0) fail("sethostname", argv[2]);
    execvp(argv[4], argv + 4);
    int err = errno;
    dprintf(2, "kubesvc-podexec: exec %s: %s\n", argv[4], strerror(err));
    return err == ENOENT ? 127 : 126;
}
"""

_built: dict[str, str | None] = {}


def _build(target: Path) -> None:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise FileNotFoundError("no C compiler")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as d:
        src = Path(d) / "podexec.c"
        src.write_text(SOURCE)
        out = Path(d) / "podexec"
        subprocess.run([cc, "-O2", "-o", str(out), str(src)], check=True, capture_output=True, timeout=60)
        os.replace(out, target)  # atomic: agents building at once each install a whole file


def launcher(cache_dir: Path = CACHE_DIR) -> str | None:
    """The launcher's path (built once per source version), or None if it cannot be built."""
    key = str(cache_dir)
    if key in _built:
        return _built[key]
    target = cache_dir / f"podexec-{hashlib.sha1(SOURCE.encode()).hexdigest()[:12]}"
    path: str | None = str(target)
    if not os.access(target, os.X_OK):
        try:
            _build(target)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("podexec launcher not built (%s); containers start through a preexec_fn", e)
            path = None
            with contextlib.suppress(OSError):
                target.unlink()
    _built[key] = path
    return path
