"""tfp_vqvae.training."""
