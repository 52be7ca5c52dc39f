"""Proxy language models: tokenized data (`data`), the model (`model`) and one training run (`train`).

Kept import-free so `import automixer.proxy` stays light; import the submodules directly.
"""
