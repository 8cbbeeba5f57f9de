"""How the shipped TDVAE-40 is made and certified: the dictionary that starts W, training, the staged recipe,
the release with its measured card, and the thesis' findings checked on it."""
