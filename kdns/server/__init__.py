"""Serving: the query dispatcher, the plugin chain, listeners and the application lifecycle."""
