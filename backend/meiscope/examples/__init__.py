"""Worked examples of models meiscope can explore besides its own TDVAE (docs/OWN_MODEL.md)."""
