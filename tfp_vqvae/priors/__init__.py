"""tfp_vqvae.priors."""
