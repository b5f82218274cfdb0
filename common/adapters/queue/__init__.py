"""The queue port (`port.py`) and its adapters: the embedded SQLite queue, Pub/Sub and SQS (with its relay)."""
