"""tfp_vqvae.keras."""
