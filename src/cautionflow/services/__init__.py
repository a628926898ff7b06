"""Service functions: one per pipeline step, composing the domain with the adapters."""
