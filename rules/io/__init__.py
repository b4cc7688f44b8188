"""Rules about io."""
