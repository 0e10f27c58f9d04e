"""The tools over both methods: the stylising command line (``adain-stylize``, ``infer.py``)."""
