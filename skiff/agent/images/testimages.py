"""The images end-to-end tests run, built from the host's busybox (no registry, no Docker needed).

- `skiff.local/test/shell:1`: busybox applets, Cmd `sh`, runs as root.
- `skiff.local/test/web:1`: `/web.sh` runs busybox httpd on `$PORT` (default 8080) serving `/health` and `/ready` (200 "ok");
  `rm /www/ready` (e.g. through exec) makes readiness fail with 404.
- `skiff.local/test/nonroot:1`: the shell image with `User 1000`, for runAsNonRoot.

Usage: `scripts/build-test-images OUTDIR` (or `python -m skiff.agent.images.testimages OUTDIR`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from skiff.agent.images.builtin import PAUSE_IMAGE, busybox_base, find_busybox, pause_image
from skiff.agent.images.oci import ArchiveContents, Dir, Entry, File, ImageConfig, build_image, write_archive

SHELL_IMAGE = "skiff.local/test/shell:1"
WEB_IMAGE = "skiff.local/test/web:1"
NONROOT_IMAGE = "skiff.local/test/nonroot:1"

WEB_SCRIPT = b"""#!/bin/sh
# skiff test web server: busybox httpd in the foreground on $PORT (default 8080), docroot /www.
# Not `exec httpd`: as PID 1 httpd would ignore SIGTERM (no default handlers) and every pod deletion
# would wait out the grace period; this shell stops it and exits 0 at once.
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
httpd -f -p "${PORT:-8080}" -h /www &
pid=$!
wait "$pid"
"""


def shell_image(busybox: Path) -> ArchiveContents:
    return build_image(
        SHELL_IMAGE, ImageConfig(cmd=["sh"], labels={"io.skiff.image": "test/shell"}), busybox_base(busybox)
    )


def nonroot_image(busybox: Path) -> ArchiveContents:
    """Numeric `User` on purpose: kubelet refuses runAsNonRoot for a non-numeric image user it cannot verify."""
    config = ImageConfig(
        cmd=["sh"], user="1000", working_dir="/home/app", labels={"io.skiff.image": "test/nonroot"}
    )
    return build_image(NONROOT_IMAGE, config, busybox_base(busybox))


def web_image(busybox: Path) -> ArchiveContents:
    entries: list[Entry] = [
        *busybox_base(busybox),
        File("/web.sh", WEB_SCRIPT, 0o755),
        # /www is writable by anyone so a probe test can `rm /www/ready` as whatever user the pod runs.
        Dir("/www", 0o777),
        File("/www/index.html", b"<html><body>skiff test web</body></html>\n", 0o666),
        File("/www/health", b"ok", 0o666),
        File("/www/ready", b"ok", 0o666),
    ]
    config = ImageConfig(
        entrypoint=["/web.sh"],
        exposed_ports=["8080/tcp"],
        working_dir="/www",
        labels={"io.skiff.image": "test/web"},
    )
    return build_image(WEB_IMAGE, config, entries)


def build_test_images(
    outdir: Path, busybox: Path | None = None, *, with_pause: bool = True
) -> dict[str, Path]:
    """Write every test image archive into `outdir`; returns {image ref: archive path}. Blocking I/O."""
    bb = busybox or find_busybox()
    images = [
        ("shell.tar", SHELL_IMAGE, shell_image(bb)),
        ("web.tar", WEB_IMAGE, web_image(bb)),
        ("nonroot.tar", NONROOT_IMAGE, nonroot_image(bb)),
    ]
    if with_pause:
        images.append(("pause.tar", PAUSE_IMAGE, pause_image(bb)))
    return {ref: write_archive(outdir / file_name, image) for file_name, ref, image in images}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build-test-images", description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", type=Path, help="directory for the image archives (created if missing)")
    parser.add_argument("--busybox", type=Path, help="a statically linked busybox (default: the host's)")
    parser.add_argument("--no-pause", action="store_true", help="skip the pause image")
    args = parser.parse_args(argv)
    for ref, path in build_test_images(args.outdir, args.busybox, with_pause=not args.no_pause).items():
        print(f"{ref}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
