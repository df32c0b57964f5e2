"""tfp_vqvae: VQ-VAE with TensorFlow Probability, built for TF Serving."""

__version__ = "0.1.0"
