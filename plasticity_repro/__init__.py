"""plasticity_repro: a JAX reproduction of Bell, Duffy & Fairhall (NeurIPS 2024),
"Discovering plasticity rules that organize and maintain neural circuits"."""
__version__ = "0.1.0"
