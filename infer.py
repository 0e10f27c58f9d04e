"""Stylize images from the command line: the ``adain-stylize`` command, runnable from a checkout.

    python infer.py --content photo.jpg --style painting.jpg --output out.jpg

The program is :mod:`nst.stylize`; ``python infer.py --help`` lists its options.
"""

from nst.stylize import cli

if __name__ == "__main__":
    cli()
