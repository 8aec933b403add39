"""A record to a structured summary: the schema, the prompt, records in parts, the draft guard."""
