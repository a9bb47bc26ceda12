"""Server-side apply and managedFields: field sets (fieldpath), schema-aware merges (typed) and the
field manager (managedfields). Pure; the API server calls `managedfields.update` on every write and
`managedfields.apply` for apply patches."""
