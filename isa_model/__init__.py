"""isa_model package."""
