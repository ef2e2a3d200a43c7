"""Developer tools: nothing here is installed or imported by the running services."""
