"""The store port (`port.py`: atomic document primitives), its adapters (SQLite, Firestore) and the
business rules written once over them (accounts, ledger, jobs)."""
