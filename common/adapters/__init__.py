"""Adapters to the outside world: the storage and queue ports with their adapters, the store's document
adapters (SQLite, Firestore; the port they implement is `common.records.port`), local files, event posting, and
the factory that picks adapters from the settings (`backends`). Imports no feature package."""
