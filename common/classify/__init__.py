"""Classifying images on request: the request's parts (`request`) and the metered service (`service`)."""
