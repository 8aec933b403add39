"""ICD-10 at run time: code tables, the lookup and its learned ranker, final codes by the combination rules,
the model's function-call loop. ``training/`` beside them is build-time only and never shipped."""
