"""Decoder training: data, the held-out split, losses, the Lightning module and callbacks, export, the CLI."""
