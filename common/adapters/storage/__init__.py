"""The object-storage port (`port.py`) and its adapters: a local folder, Google Cloud Storage, S3."""
