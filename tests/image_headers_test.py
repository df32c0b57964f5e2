"""Tests of checking image files by their headers before training."""

import io
import os
import re
import struct

from absl.testing import parameterized
import numpy as np
from PIL import Image
import tensorflow as tf

from tfp_vqvae.data import image_headers
import image_files


def _webp(image: np.ndarray, **options) -> bytes:
  """`image` encoded as WebP by Pillow (TF has no WebP encoder)."""
  out = io.BytesIO()
  Image.fromarray(image).save(out, "WEBP", **options)
  return out.getvalue()


class ReadHeaderTest(parameterized.TestCase, tf.test.TestCase):

  def _write(self, name, contents):
    return image_files.write_file(os.path.join(self.get_temp_dir(), name), contents)

  @parameterized.parameters(
      (".png", (5, 7, 1)), (".png", (6, 3, 3)), (".jpg", (9, 4, 3)),
      (".jpg", (9, 4, 1)), (".bmp", (5, 6, 3)))
  def test_header_gives_the_decoded_shape_without_a_doubt(self, extension, shape):
    image = image_files.random_images(1, shape)[0]
    path = image_files.write_image(os.path.join(self.get_temp_dir(), "a" + extension),
                                   image)

    self.assertEqual(image_headers.read_header(path), (shape, None))
    self.assertEqual(image_headers.check_file(path), shape)

  @parameterized.named_parameters(
      ("lossy", dict(), (6, 9, 3)), ("lossless", dict(lossless=True), (6, 9, 3)))
  def test_webp(self, options, shape):
    image = image_files.random_images(1, (6, 9, 3))[0]
    path = self._write("a.webp", _webp(image, **options))

    self.assertEqual(image_headers.read_header(path), (shape, None))

  def test_webp_with_alpha_and_gif(self):
    rgba = self._write("a.webp", _webp(image_files.random_images(1, (6, 9, 4))[0]))
    gif = self._write("a.gif", image_files.GIF_1X1)

    self.assertEqual(image_headers.read_header(rgba), ((6, 9, 4), None))
    self.assertEqual(image_headers.check_file(gif), (1, 1, 3))

  @parameterized.parameters(".png", ".jpg")
  def test_truncated_file_is_refused_after_decoding(self, extension):
    encoded = image_files.encode(image_files.random_images(1, (16, 16, 3))[0], extension)
    path = self._write("a" + extension, encoded[:-5])

    shape, doubt = image_headers.read_header(path)
    with self.assertRaisesRegex(image_headers.BadImageError,
                                f"^{re.escape(doubt)}, and decoding it fails: ") as raised:
      image_headers.check_file(path)

    self.assertEqual(shape, (16, 16, 3))
    self.assertIn("does not end with", doubt)
    self.assertNotIn("\n", str(raised.exception))

  def test_bytes_after_the_end_marker_are_decoded_and_accepted(self):
    encoded = image_files.encode(image_files.random_images(1, (4, 6, 3))[0], ".png")
    path = self._write("a.png", encoded + b"appended")

    self.assertIsNotNone(image_headers.read_header(path)[1])
    self.assertEqual(image_headers.check_file(path), (4, 6, 3))

  @parameterized.named_parameters(
      ("empty", b"", "^the file is empty, and decoding it fails: "),
      ("text", b"<html>not an image</html> " * 3,
       "^its first bytes are not those of a PNG, JPEG, GIF, BMP or WebP file, and "
       "decoding it fails: "),
      ("short_bmp", image_files.bmp_bytes(np.zeros((8, 8, 3), np.uint8))[:80],
       "^its pixels need 246 bytes, the file has 80, and decoding it fails: "))
  def test_bad_file_says_what_is_wrong(self, contents, message):
    path = self._write("bad.png", contents)

    with self.assertRaisesRegex(image_headers.BadImageError, message):
      image_headers.check_file(path)

  def test_a_file_too_large_to_decode_is_refused_from_its_header(self):
    encoded = bytearray(image_files.encode(np.zeros((2, 2, 1), np.uint8), ".png"))
    encoded[16:24] = struct.pack(">II", 40000, 30000)  # IHDR width and height.
    path = self._write("huge.png", bytes(encoded))

    with self.assertRaisesRegex(
        image_headers.BadImageError,
        r"^it is 30000x40000, 1200000000 pixels, more than the 268435456 an image may "
        r"have here \(it would take 4.5 GiB decoded\); downscale it$"):
      image_headers.check_file(path)

  def test_check_files_lists_every_bad_file_in_order(self):
    root = self.get_temp_dir()
    paths = [image_files.write_image(os.path.join(root, f"{i}.png"),
                                     image_files.random_images(1, (3, 4, 1), seed=i)[0])
             for i in range(5)]
    for index in (3, 1):
      image_files.write_file(paths[index], b"")

    shapes, bad = image_headers.check_files(paths, "five files")

    self.assertEqual([index for index, _ in bad], [1, 3])
    self.assertAllEqual(shapes[[0, 2, 4]], [[3, 4, 1]] * 3)
    self.assertAllEqual(shapes[[1, 3]], np.zeros([2, 3]))


if __name__ == "__main__":
  tf.test.main()
