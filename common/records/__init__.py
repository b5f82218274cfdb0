"""The domain's records and their rules, written once against the store port (`port.py`: atomic document
primitives): accounts, the ledger, reservations, jobs, custom models, usage, throttles and the queue's messages.

They live together, below the features and apart from the adapters: `Store` composes every rule over one
document store so one transaction may touch several (a classify reservation charges the ledger; a job's image
settles the ledger and the space's usage), and each adapter (`common.adapters.store`) implements only the port.
"""
