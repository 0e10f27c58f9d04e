"""The tools over both methods: the stylizing command line (``adain-stylize``, ``infer.py``)."""
