"""pyiron jobs of mlip-plugin (extra ``pyiron``)."""
