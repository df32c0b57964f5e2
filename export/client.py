"""`python -m export.client` from a checkout: the same program as `tfp-vqvae-client`
(tfp_vqvae/client.py, which documents the commands and flags)."""

from tfp_vqvae import client

if __name__ == "__main__":
  client.run()
