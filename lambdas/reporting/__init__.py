"""The run's HTML report: its data (picture.py), the page (html.py) and the fix offered per error (fixes.py)."""
