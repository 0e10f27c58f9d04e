"""What compares the two methods, above both: quality metrics, the speed/quality benchmark and the evaluation."""
