"""Checkpoints: safe save and load (safetensors, a vetted pickle subset), metadata, foreign and published weights."""
