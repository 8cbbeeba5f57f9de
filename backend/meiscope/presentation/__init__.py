"""What a person reads: figures of runs (tiles with colour bars and stated scales), run labels, export zips,
and the model card's text and figures. Matplotlib is imported here and above, never by the engine or the
model."""
