"""Plug-ins that make gvcore's loss and metrics available inside other training frameworks.

Each submodule imports its framework only when it is imported itself, so ``import gvcore`` never needs them.
"""
