"""Validation of the workflow's events against external references: the study's own ntuples and the generators compared (rules/validate.smk)."""
