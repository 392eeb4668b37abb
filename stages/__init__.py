"""One module per recipe step: records in -> records out (see pipeline.stage.Stage)."""
