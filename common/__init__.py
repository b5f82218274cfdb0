"""Shared code of the ImageClassify functions: configuration, errors, ports and adapters."""
