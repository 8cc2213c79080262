"""Deployed code of sfncopy: thin Lambda handlers and the copy core (standard library + boto3 only)."""
