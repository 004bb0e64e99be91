"""Model families of the built-in plugin, one file per family."""
