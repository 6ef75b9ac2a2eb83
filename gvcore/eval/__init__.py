"""Evaluation: the one scoring path, tiled inference, evaluation runs, statistics, the atlas, the results database."""
