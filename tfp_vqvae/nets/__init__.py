"""tfp_vqvae.nets."""
