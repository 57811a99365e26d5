"""Every socket lives here: UDP and TCP listeners that know bytes and nothing of plugins."""
