"""The store's document adapters: SQLite (embedded) and Firestore, each implementing
`common.records.port.DocumentStore`."""
