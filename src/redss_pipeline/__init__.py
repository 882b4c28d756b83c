"""REDSS/CSAP radio-show research pipeline."""
