"""Everything that speaks SQL: migrations, named queries, connections."""
