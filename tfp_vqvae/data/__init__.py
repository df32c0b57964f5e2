"""tfp_vqvae.data."""
