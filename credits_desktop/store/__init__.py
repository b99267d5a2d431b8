"""Persistence: models, migrations, engine set-up per dialect, and queries."""
