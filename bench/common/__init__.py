"""What every benchmark shares: the measuring harness, the report's sections and the machine,
the benchmark shop, and the helpers that start ``archer serve``.

Each subject folder (``bench/import``, ``bench/build`` …) puts ``bench/`` on ``sys.path`` in its
scripts and imports ``common.<module>``. Nothing here imports archer at import time: contenders
that are not archer (pandas, lifetimes) import this package too.
"""
