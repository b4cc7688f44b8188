"""Rules about concurrency."""
