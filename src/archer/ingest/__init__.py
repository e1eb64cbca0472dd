"""Getting a shop's data in: files, presets, validation, quarantine, the synthetic shop."""
