"""The shared VGG19 encoder (used by AdaIN and by Gatys), its weight sources and the papers' normalisation."""
