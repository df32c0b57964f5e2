"""tfp_vqvae.quantizers."""
