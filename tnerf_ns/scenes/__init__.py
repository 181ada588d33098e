"""Offline scene making: the NeRF-MAE grid reader/writer, the synthetic scene generator, camera rigs, the grid volume
renderer, and rendering whole datasets for ``tnerf-scenes``. Nothing here runs during training."""
