"""Stage 2: fetching flow runs and contacts from Rapid Pro into the local store and the raw files."""
