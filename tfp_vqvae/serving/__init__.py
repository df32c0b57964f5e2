"""tfp_vqvae.serving."""
