"""AiiDA data types, calculations and work chains of mlip-plugin (extra ``aiida``)."""
