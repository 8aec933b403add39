"""ICD-10 at run time: code tables, the lookup and its learned ranker, the model's function-call loop."""
