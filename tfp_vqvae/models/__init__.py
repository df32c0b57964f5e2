"""tfp_vqvae.models."""
