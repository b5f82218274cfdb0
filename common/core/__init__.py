"""The base every layer stands on: settings grouped by concern, the domain errors (a code and a message, no
HTTP status), logging, metrics, message signing and small utilities. Imports nothing else of `common`."""
