"""Pixels in and out: image and video files, colour transfer, guided upsampling."""
