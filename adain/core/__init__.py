"""Shared plumbing of every tool and both methods: errors, the job rules, command-line helpers, atomic files, device and precision, lazy exports, shipped files."""
