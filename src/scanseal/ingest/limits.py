"""Resource limits that every input is checked against before any pixel is decoded.

A hostile file can declare a huge image in a few bytes (a decompression bomb). These limits are
checked against the declared header values, so a bomb is rejected before it costs memory or time.
Memory use is bounded by one frame, because frames are decoded one at a time.
"""

from __future__ import annotations

from typing import Final

MAX_FRAME_PIXELS: Final[int] = 2**26
"""Most pixels (rows × columns) one frame may declare: 67,108,864, e.g. 8192 × 8192.

Four times the largest flat-panel detectors and mammography plates (about 4300 × 4300), and
below Pillow's own bomb warning (89,478,485 pixels), so users see ScanSeal's message first.
"""

MAX_DECODED_BYTES: Final[int] = 2**32
"""Most bytes all frames of one image may decode to: 4 GiB.

A 2,000-slice enhanced CT (512 × 512 × 16 bit) is 1 GiB; anything far beyond that in one
object is more likely a bomb than a scan. Frames are streamed, so this bounds time, not memory.
"""

MAX_RASTER_FILE_BYTES: Final[int] = 2**28
"""Largest PNG or JPEG file accepted: 256 MiB.

Pillow decodes a PNG or JPEG as a whole, so the file size is bounded too; photos and screenshots
of scans are a few MiB.
"""

__all__ = ["MAX_DECODED_BYTES", "MAX_FRAME_PIXELS", "MAX_RASTER_FILE_BYTES"]
