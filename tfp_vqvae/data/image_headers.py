"""Checking image files before training, from their headers, without decoding them.

A folder dataset may hold a file that is empty, truncated, of another format or
far too large. Found by the decoder, such a file stops training when it is first
read, possibly an hour in (the evaluation split is first read at the first
evaluation). `check_files` finds them before the first step instead, reading
about a hundred bytes per file:

* the header gives the format and the size: the PNG IHDR chunk, the JPEG
  frame header (SOFn, found by seeking from marker to marker), the GIF logical
  screen, the BMP info header, the WebP VP8/VP8L/VP8X chunk;
* the end of the file shows whether it is complete: the PNG IEND chunk, the
  JPEG end-of-image marker, the GIF trailer, the BMP pixel array's and the
  RIFF container's declared sizes;
* a file whose header cannot be read this way, or whose end looks wrong (a
  truncated file, or a valid one with bytes appended), is decoded with
  `tf.io.decode_image`, which has the last word: the check refuses exactly the
  files training could not decode, plus those larger than `MAX_PIXELS`.

`MAX_PIXELS` bounds the memory one decoded image takes (1 GiB as RGBA), so that
no single file can exhaust the machine's memory while the pipeline decodes it.
"""

import concurrent.futures
import struct
from typing import BinaryIO, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfp_vqvae.data import preprocessing
from tfp_vqvae.data.image_files import first_line
from tfp_vqvae.internal import progress

# The most pixels (height x width) an image file may have: 2**28, 1 GiB decoded
# as RGBA; ~16384 x 16384. Larger files are refused before anything decodes them.
MAX_PIXELS = 1 << 28
# Files checked at once (the work is waiting for the disk, not the CPU).
_THREADS = 8
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# PNG colour type -> channels (grey, RGB, palette, grey + alpha, RGBA).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers, which hold the size (C4, C8 and CC are not frames).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers without a length field (TEM, RSTn, SOI).
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xD9)])
# A JPEG with more segments before its frame header than this is left to the decoder.
_JPEG_MAX_SEGMENTS = 256
# BMP bits per pixel -> channels of the decoded image.
_BMP_CHANNELS = {8: 1, 24: 3, 32: 4}


class BadImageError(ValueError):
  """An image file that training could not read; str() says what is wrong."""


def _png(head: bytes, f: BinaryIO, size: int):
  if head[12:16] != b"IHDR" or head[25] not in _PNG_CHANNELS:
    return None, "its header has no valid IHDR chunk"
  width, height = struct.unpack(">II", head[16:24])
  f.seek(size - len(_PNG_END))
  complete = f.read(len(_PNG_END)) == _PNG_END
  return ((height, width, _PNG_CHANNELS[head[25]]),
          None if complete else "it does not end with the PNG end chunk (IEND)")


def _jpeg(unused_head: bytes, f: BinaryIO, size: int):
  position = 2
  for _ in range(_JPEG_MAX_SEGMENTS):
    f.seek(position)
    marker = f.read(2)
    while len(marker) == 2 and marker == b"\xff\xff":  # Fill bytes before a marker.
      marker = marker[1:] + f.read(1)
      position += 1
    if len(marker) < 2 or marker[0] != 0xFF:
      return None, f"its markers stop at byte {position}"
    if marker[1] in _JPEG_STANDALONE:
      position += 2
      continue
    segment = f.read(8)
    if len(segment) < 2:
      return None, f"its markers stop at byte {position}"
    if marker[1] in _JPEG_FRAMES and len(segment) == 8:
      height, width, components = struct.unpack(">HHB", segment[3:8])
      f.seek(size - 2)
      complete = f.read(2) == b"\xff\xd9"
      return ((height, width, components),
              None if complete else "it does not end with the JPEG end marker (FFD9)")
    position += 2 + struct.unpack(">H", segment[:2])[0]
  return None, "no frame header among its first segments"


def _gif(head: bytes, f: BinaryIO, size: int):
  width, height = struct.unpack("<HH", head[6:10])
  f.seek(size - 1)
  complete = f.read(1) == b";"
  return (height, width, 3), None if complete else "it does not end with the GIF trailer"


def _bmp(head: bytes, unused_f: BinaryIO, size: int):
  if len(head) < 30 or struct.unpack("<I", head[14:18])[0] < 40:
    return None, "its info header is not the usual 40 bytes or more"
  offset = struct.unpack("<I", head[10:14])[0]
  width, height = struct.unpack("<ii", head[18:26])
  bits = struct.unpack("<H", head[28:30])[0]
  if bits not in _BMP_CHANNELS:
    return None, f"it has {bits} bits per pixel"
  pixel_bytes = (bits * abs(width) + 31) // 32 * 4 * abs(height)
  shape = (abs(height), abs(width), _BMP_CHANNELS[bits])
  if offset + pixel_bytes > size:
    return shape, f"its pixels need {offset + pixel_bytes} bytes, the file has {size}"
  return shape, None


def _webp(head: bytes, unused_f: BinaryIO, size: int):
  declared = struct.unpack("<I", head[4:8])[0] + 8
  chunk = head[12:16]
  if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
    width, height = struct.unpack("<HH", head[26:30])
    shape = (height & 0x3FFF, width & 0x3FFF, 3)
  elif chunk == b"VP8L" and head[20] == 0x2F:
    bits = struct.unpack("<I", head[21:25])[0]
    shape = (((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1, 4 if bits >> 28 & 1 else 3)
  elif chunk == b"VP8X":
    width = int.from_bytes(head[24:27], "little") + 1
    height = int.from_bytes(head[27:30], "little") + 1
    shape = (height, width, 4 if head[20] & 0x10 else 3)
  else:
    return None, f"its first chunk {chunk!r} is not one this check reads"
  return shape, None if declared <= size else (
      f"its RIFF header declares {declared} bytes, the file has {size}")


def _reader(head: bytes):
  """The header reader of a file's format, from its first bytes, or None."""
  if head.startswith(_PNG_SIGNATURE):
    return _png
  if head.startswith(b"\xff\xd8\xff"):
    return _jpeg
  if head.startswith((b"GIF87a", b"GIF89a")):
    return _gif
  if head.startswith(b"BM"):
    return _bmp
  if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
    return _webp
  return None


def read_header(path: str) -> tuple[Optional[tuple[int, int, int]], Optional[str]]:
  """What the header and end of an image file say, without decoding it.

  Returns:
    (shape, doubt): shape is (height, width, channels as stored) if the header
    gives it, else None; doubt is None if the file looks complete, else why it
    may not be (it must then be decoded to be sure).

  Raises:
    OSError: If the file cannot be opened or read.
  """
  with open(path, "rb") as f:
    head = f.read(32)
    size = f.seek(0, 2)
    if not head:
      return None, "the file is empty"
    reader = _reader(head)
    if reader is None:
      return None, "its first bytes are not those of a PNG, JPEG, GIF, BMP or WebP file"
    if len(head) < 30:
      return None, f"the file has only {size} bytes"
    return reader(head, f, size)


def check_file(path: str) -> tuple[int, int, int]:
  """(height, width, channels as stored) of an image file that training can read.

  The header is read; the file is decoded only if the header leaves a doubt
  (see the module docstring).

  Raises:
    BadImageError: If the file cannot be read or decoded, or has more than
      `MAX_PIXELS` pixels; the message says what is wrong.
  """
  try:
    shape, doubt = read_header(path)
  except OSError as e:
    raise BadImageError(f"cannot be read ({e.strerror or e})") from e
  if shape is not None and shape[0] * shape[1] > MAX_PIXELS:
    raise BadImageError(
        f"it is {shape[0]}x{shape[1]}, {shape[0] * shape[1]} pixels, more than the "
        f"{MAX_PIXELS} an image may have here (it would take "
        f"{shape[0] * shape[1] * 4 / 2**30:.1f} GiB decoded); downscale it")
  if doubt is None:
    return shape
  try:
    decoded = preprocessing.decode(tf.io.read_file(path))
  except tf.errors.OpError as e:
    raise BadImageError(f"{doubt}, and decoding it fails: {first_line(e)}") from e
  return tuple(int(s) for s in decoded.shape)


def check_files(paths: Sequence[str], what: str
                ) -> tuple[np.ndarray, list[tuple[int, str]]]:
  """`check_file` of every path, in threads, with progress lines.

  Args:
    paths: The image files.
    what: What they are, for the progress lines, e.g. "folder:/data train".

  Returns:
    (shapes, bad): int64 [len(paths), 3], the (height, width, channels) of
    each file (zeros for bad ones); and (index, what is wrong) of each bad file,
    in path order.
  """
  shapes = np.zeros([len(paths), 3], np.int64)
  bad = []

  def check(index):
    try:
      shapes[index] = check_file(paths[index])
    except BadImageError as e:
      return index, str(e)
    return None

  with progress.Progress(f"Checking the {len(paths)} files of {what}", len(paths),
                         "files") as counter:
    with concurrent.futures.ThreadPoolExecutor(_THREADS) as pool:
      for problem in pool.map(check, range(len(paths))):
        if problem is not None:
          bad.append(problem)
        counter.add(1)
  return shapes, bad
