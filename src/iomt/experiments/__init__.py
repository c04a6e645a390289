"""Experiments: provision, launch, drive, record, and report what the papers measured."""
