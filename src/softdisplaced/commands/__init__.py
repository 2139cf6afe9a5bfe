"""Sub-commands of the ``softdisplaced`` CLI (thin wrappers over the stage modules)."""
