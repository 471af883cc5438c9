"""Category blocklists: parsing every common format, the compact index, remote sources."""
