"""tfp_vqvae.configs."""
