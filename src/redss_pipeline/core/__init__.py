"""What every stage shares: configuration, errors, the audited record type, code schemes and labels, files."""
