"""Evaluation protocol shared by the comparison scripts: baseline settings as their authors run them, the trivial
reprojection baseline, scoring of input and novel views, and the rows of ``comparison.json``."""
