"""From documents to applications: grouping, versions, checks, receipts, decisions, exports.

A package of its own because it is the product's domain logic, shared by the pipeline (grouping and
checks after each message), the CLI, the acknowledgements and the dashboard, and because it is large:
it must not grow inside `intake/` (I/O and orchestration) or `parsers/` (pure file reading).
"""
