"""Every statement of a summary checked against its record: values, terms, negations, grounding, the verdict."""
