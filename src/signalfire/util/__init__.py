"""Primitives every layer shares, one module each, imported from their modules.

``ragged`` (ragged-array kernels), ``deadline`` (query deadlines and cancellation),
``files`` (durable file and directory writes), ``gofmt`` (Go's float and string
formatting), ``timeutil`` (time and duration parsing), ``malloc`` (allocator settings).
They are unrelated to each other, so this package re-exports nothing: the module name
says what a caller uses.
"""
