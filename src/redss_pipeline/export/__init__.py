"""What stage 3 hands to people: the CSV files, the Coda files for coders, and the Google Drive upload."""
