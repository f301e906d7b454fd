"""The relational store: schema, engine, migrations."""
