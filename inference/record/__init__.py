"""A record and its summary as every layer of the core sees them: the bottom package.

The summary model and its sections (``summary``), what a run keeps beyond the summary's text (``evidence``),
a version's review status (``status``), the prompt templates (``prompts``), and the text analysis that both
the summarizer's draft guard and the checks use: measured values (``values``), clinical terms
(``clinical_terms``), sentences and their source spans (``grounding``), negation and certainty cues
(``polarity``). It imports nothing of the core above ``errors``, ``paths`` and ``tsv_files``.
"""
