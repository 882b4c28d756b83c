"""Stage 1 and de-identification: the phone number <-> UUID table and what may be read from a number."""
