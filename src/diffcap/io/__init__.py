"""What comes into a run and what goes out: inputs (files, globs, URLs, manifests, ids,
downloads) and outputs (records shards, Parquet, failure lists, publishing)."""
