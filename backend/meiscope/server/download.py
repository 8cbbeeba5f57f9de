"""A zip built for one download: written in a scratch folder off the event loop, sent, then deleted."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Callable

from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from ..atomic import scratch_dir


async def zip_download(write: Callable[[Path], Path], filename: str) -> FileResponse:
    """write(path) builds the zip at path (in a worker thread); the response removes it once sent. An error
    of write removes the scratch folder and propagates."""
    folder = scratch_dir()
    try:
        zip_path = await asyncio.to_thread(write, folder / filename)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(zip_path, media_type="application/zip", filename=filename,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
