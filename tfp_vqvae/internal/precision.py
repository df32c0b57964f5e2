"""Whether a reduced-precision `dtype` is fast on this machine, said before training.

On a CPU, TF runs bfloat16 (float16) matmuls and convolutions in hardware only with
AVX512_BF16 or AMX-BF16 (AVX512_FP16 or AMX-FP16); elsewhere it emulates them, and
on an AVX2-only CPU a bfloat16 train step measured 7.4x slower than float32 (2,122 vs
288 ms at batch 64). GPUs and TPUs run both natively.
"""

import os
from typing import Optional

# CPU flags (as /proc/cpuinfo spells them) that run each dtype in hardware.
NATIVE_CPU_FLAGS = {"bfloat16": ("avx512_bf16", "amx_bf16"),
                    "float16": ("avx512_fp16", "amx_fp16")}
_CPUINFO = "/proc/cpuinfo"


def cpu_flags(cpuinfo_text: Optional[str] = None) -> Optional[set]:
  """The CPU's feature flags, from /proc/cpuinfo text; None if unknown (not Linux)."""
  if cpuinfo_text is None:
    if not os.path.exists(_CPUINFO):
      return None
    with open(_CPUINFO) as f:
      cpuinfo_text = f.read()
  for line in cpuinfo_text.splitlines():
    if line.startswith("flags"):
      return set(line.partition(":")[2].split())
  return None


def slow_dtype_warning(dtype: str, has_accelerator: bool,
                       flags: Optional[set]) -> Optional[str]:
  """One line saying `dtype` will be emulated, slowly, on this CPU; None if not.

  Args:
    dtype: the compute dtype, e.g. "bfloat16".
    has_accelerator: whether a GPU or TPU runs the step.
    flags: `cpu_flags()` of the machine (None: unknown, no warning).
  """
  native = NATIVE_CPU_FLAGS.get(dtype)
  if native is None or has_accelerator or flags is None or flags & set(native):
    return None
  return (f"dtype={dtype} will be slow here: this CPU has no {' or '.join(native)} "
          f"units, so TF emulates {dtype} (on an AVX2-only CPU a bfloat16 step measured "
          "7x slower than float32). Use float32 on this machine; bfloat16 pays on "
          "CPUs with AVX512_BF16/AMX, on GPUs and on TPUs.")
