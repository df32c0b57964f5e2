"""Tests of the slow-precision warning (tfp_vqvae/internal/precision.py)."""

import tensorflow as tf

from tfp_vqvae.internal import precision

_AVX2_ONLY = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
_SAPPHIRE_RAPIDS = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 avx512_fp16 amx_fp16\n"


class PrecisionTest(tf.test.TestCase):

  def test_reads_the_flags_line(self):
    self.assertEqual(precision.cpu_flags(_AVX2_ONLY), {"fpu", "sse2", "avx", "avx2", "fma"})
    self.assertIsNone(precision.cpu_flags("processor\t: 0\n"))

  def test_bfloat16_on_an_avx2_cpu_warns_once_in_one_line(self):
    warning = precision.slow_dtype_warning("bfloat16", False,
                                           precision.cpu_flags(_AVX2_ONLY))
    self.assertIn("dtype=bfloat16 will be slow here", warning)
    self.assertIn("avx512_bf16 or amx_bf16", warning)
    self.assertNotIn("\n", warning)
    self.assertIn("avx512_fp16", precision.slow_dtype_warning(
        "float16", False, precision.cpu_flags(_AVX2_ONLY)))

  def test_no_warning_where_the_dtype_is_native_or_fp32(self):
    avx2 = precision.cpu_flags(_AVX2_ONLY)
    self.assertIsNone(precision.slow_dtype_warning("float32", False, avx2))
    self.assertIsNone(precision.slow_dtype_warning("bfloat16", True, avx2))
    self.assertIsNone(precision.slow_dtype_warning("bfloat16", False, None))
    native = precision.cpu_flags(_SAPPHIRE_RAPIDS)
    for dtype in ("bfloat16", "float16"):
      self.assertIsNone(precision.slow_dtype_warning(dtype, False, native))


if __name__ == "__main__":
  tf.test.main()
