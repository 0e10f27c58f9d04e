"""The AdaIN model: its maths as pure functions, the decoder, decoder files and :class:`StyleTransfer`."""
