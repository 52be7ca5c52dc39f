"""Mixture sweeps: the design (which mixtures to train), the runner and the runs table.

Kept import-free so `import automixer.sweep` stays light; import `design`, `table` or `runner` directly.
"""
