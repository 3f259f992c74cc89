//! The append-only, hash-chained ledger of runs.
