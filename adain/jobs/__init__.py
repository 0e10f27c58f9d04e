"""Requests to outputs: one checked :class:`Request` stylized as an image or a video, the path every tool shares."""
