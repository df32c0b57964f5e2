"""tfp_vqvae.internal."""
