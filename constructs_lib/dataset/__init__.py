"""The dataset capability: the bucket prefix ML services read, their read role, the optional upload."""
