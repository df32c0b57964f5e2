"""CPU benchmark of the train step, the quantizer, serving and sampling, beside the peers.

    python -m tfp_vqvae.benchmark --what train_step --batch 64 [--quick]

One JSON line per configuration on stdout, progress on stderr; see
`tfp_vqvae.internal.benchmarks` for the protocol (../shared/bench/README.md).
"""

import sys

from tfp_vqvae.internal.benchmarks import main

if __name__ == "__main__":
  sys.exit(main())
