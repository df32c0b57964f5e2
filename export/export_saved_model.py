"""`python -m export.export_saved_model` from a checkout: the same program as
`tfp-vqvae-export` (tfp_vqvae/export.py, which documents the flags)."""

from tfp_vqvae import export

if __name__ == "__main__":
  export.run()
