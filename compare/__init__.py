"""What compares the two methods, above both: quality metrics and the speed/quality benchmark."""
