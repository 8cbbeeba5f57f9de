"""Models trained elsewhere, read into meiscope's release format (the TDVAE paper's TensorFlow checkpoints)."""
