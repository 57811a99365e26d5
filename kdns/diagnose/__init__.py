"""`kdns diagnose`: replay what a pod's stub resolver sends for a name, and explain the waste."""
