"""Pipeline stages, one module per concern; each registers itself with `intake.pipeline.stage`."""
