"""Local images for the node agent: archives built on the host and imported into skiff's containerd.

`import_archive` is what `skiff images import FILE.tar` and the agent's startup (the pause image) call.
It shells out to `ctr`, because importing is containerd's content/images API, which CRI does not expose.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from skiff.agent.images.oci import ImageArchiveError, read_archive

__all__ = ["ImageImportError", "import_archive"]

# ctr 1.6 prints one line per image it unpacked: "unpacking <ref> (sha256:<hex>)...done".
_UNPACKED = re.compile(r"^unpacking (\S+) \((sha256:[0-9a-f]{64})\)\.\.\.done\s*$", re.MULTILINE)


class ImageImportError(ImageArchiveError):
    """`ctr images import` failed; the message carries its output."""


async def import_archive(
    socket: Path, archive: Path, namespace: str = "k8s.io", *, ctr: str = "ctr"
) -> list[str]:
    """Import the image(s) of `archive` into the containerd at `socket` (unpacked for its default
    snapshotter, as CRI needs them) and return the image references it now holds.

    Idempotent: importing the same archive again replaces the images with identical content. The archive is
    read first so that a malformed file fails with `ImageArchiveError` before containerd sees it.
    """
    expected = await asyncio.to_thread(read_archive, archive)
    proc = await asyncio.create_subprocess_exec(
        ctr,
        "--address",
        str(socket),
        "--namespace",
        namespace,
        "images",
        "import",
        str(archive),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise ImageImportError(
            f"ctr images import {archive} failed ({proc.returncode}): {err.decode(errors='replace').strip()}"
        )
    refs = [m.group(1) for m in _UNPACKED.finditer(text)]
    if not refs and expected.name:
        # A ctr that words its progress differently still imported the image under the archive's name.
        refs = [expected.name]
    return refs
