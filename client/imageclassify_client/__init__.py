"""Command-line client for the ImageClassify Functions API (`imageclassify`)."""

__version__ = "0.1.0"
