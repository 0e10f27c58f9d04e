"""Train an AdaIN decoder, and export decoders: the ``adain-train`` command, runnable from a checkout.

    python train.py fit --config configs/adain.yaml --data.content_shards … --data.style_shards …
    python train.py export runs/adain/checkpoints/last.ckpt decoder.safetensors

The program is :mod:`adain.training.cli`; ``python train.py fit --help`` lists its options.
"""

from adain.training.cli import cli

if __name__ == "__main__":
    cli()
